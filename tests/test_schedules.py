import math

import numpy as np
import pytest

from largestep.schedules import ConfigError, Schedule, Warmup


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
