import math

import numpy as np
import pytest

from largestep.config import ConfigError
from largestep.schedules import Schedule, Warmup


@pytest.mark.parametrize("iterations", [10, 1001, 100_001])
@pytest.mark.parametrize("fraction,factor", [(0.1, 4.8), (0.3, 3.4), (0.5, 1.5), (0.0, 2.0), (1.0, 3.0)])
def test_single_decay_switches_right_after_floor_f_t(iterations, fraction, factor):
    eta = Schedule(0.282, ((fraction, factor),)).values(iterations)
    last_large = math.floor(fraction * iterations)
    assert eta.shape == (iterations,)
    assert np.all(eta[: min(last_large + 1, iterations)] == 0.282)
    assert np.allclose(eta[last_large + 1:], 0.282 / factor, rtol=0, atol=1e-15)


def test_decays_compound_in_order():
    eta = Schedule(1.0, ((0.5, 5.0), (0.1, 2.0), (0.3, 4.0))).values(100)
    assert eta[10] == 1.0 and eta[11] == 0.5
    assert eta[30] == 0.5 and eta[31] == 0.125
    assert eta[50] == 0.125 and eta[51] == pytest.approx(0.025)
    assert eta[99] == pytest.approx(0.025)


def test_linear_warmup_then_division_of_the_warmed_value():
    T, s, gain, lr = 1000, 0.5, 200.0, 2e-4
    eta = Schedule(lr, ((s, 3.0),), Warmup("linear", s, gain)).values(T)
    i = np.arange(T)
    end = math.floor(s * T)
    expected = np.where(i <= end, lr * (1 + (gain - 1) * i / T), lr * (1 + (gain - 1) * end / T) / 3.0)
    np.testing.assert_allclose(eta, expected, rtol=1e-14)
    assert eta[0] == lr


def test_power_warmup_matches_the_multi_layer_formula():
    T, s = 10_001, 0.3
    eta = Schedule(0.04, ((s, 2.5),), Warmup("power", s, 5.0, 0.5)).values(T)
    for i in [0, 1, 17, 3000, 3001, 10_000]:
        x = min(i, math.floor(s * T)) / T
        want = 0.04 * (1 + 5 * x ** 0.5) / (2.5 if i > math.floor(s * T) else 1)
        assert eta[i] == pytest.approx(want, rel=1e-14), i


@pytest.mark.parametrize("schedule", [
    Schedule(-0.1), Schedule(0.0), Schedule(float("nan")), Schedule(float("inf")),
    Schedule(0.1, ((1.5, 2.0),)), Schedule(0.1, ((-0.1, 2.0),)), Schedule(0.1, ((0.5, 0.0),)),
    Schedule(0.1, ((0.5, -2.0),)), Schedule(0.1, warmup=Warmup("cubic", 0.5, 2.0)),
    Schedule(0.1, warmup=Warmup("linear", 1.2, 2.0)),
])
def test_invalid_schedules_are_rejected(schedule):
    with pytest.raises(ConfigError):
        schedule.validate()


def test_decay_iterations_are_the_dashed_lines():
    assert Schedule(0.3, ((0.1, 2), (0.5, 2))).decay_iterations(100_001) == [10_000, 50_000]


def test_one_schedule_type_serves_toy_updates_and_deep_fractions():
    """`at(x)` (deep nets, continuous fraction) and `values(T)` (toy updates) are one formula: with the
    decay and warmup points on whole updates and decays before the update, they agree at x = i/T."""
    T = 1000
    for schedule in [Schedule(0.3, ((0.3, 4.0),), decay_timing="before"),
                     Schedule(2e-4, ((0.5, 3.0),), Warmup("linear", 0.5, 200.0), "before"),
                     Schedule(0.04, ((0.1, 3.5), (0.9, 10.0)), Warmup("power", 0.1, 5.0, 0.5), "before"),
                     Schedule(0.6, ((0.2, 10.0),), Warmup("exponential", 0.2, 1.05, scale=100.0), "before"),
                     Schedule(0.1, cosine=True)]:
        np.testing.assert_allclose(schedule.at(np.arange(T) / T), schedule.values(T), rtol=1e-14)
        assert isinstance(schedule.at(0.25), float)


def test_deep_presets_state_the_decay_size_of_the_linear_branch():
    from largestep.schedules import deep_schedule

    # warmup_exp = 1, warmup_factor = 1 (the mnist1d study): the step falls 50x, 16.7x, 10x at f = 0.1, 0.3, 0.5
    for f, fall in ((1, 50.0), (3, 50 / 3), (5, 10.0)):
        schedule = deep_schedule(f"piecewise_0{f}epochs", 0.6)
        assert schedule.decays[0][1] == pytest.approx(fall)
        assert schedule.at(f / 10 - 1e-9) / schedule.at(f / 10) == pytest.approx(fall)
    exp = deep_schedule("piecewise_05epochs", 0.05, warmup_exp=1.05)
    assert exp.at(0.5 - 1e-12) / exp.at(0.5) == pytest.approx(10.0) and exp.at(0.95) == pytest.approx(exp.at(0.6) / 10)
    with pytest.raises(ConfigError, match="warmup kind"):
        Schedule(0.1, warmup=Warmup("cubic", 0.5, 2.0)).validate()
