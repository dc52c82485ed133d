"""Rates and their intervals against independent answers."""
import math

import numpy as np
import pytest

from largestep.stats import rate_text, wilson_interval


@pytest.mark.parametrize("k, n, low, high", [
    # Wilson score intervals computed by hand from the closed form (z = 1.96), and the textbook example of
    # Newcombe (1998), 81 of 263: 0.2553-0.3662
    (81, 263, 0.2553, 0.3662), (0, 5, 0.0, 0.4345), (5, 5, 0.5655, 1.0), (5, 16, 0.1417, 0.5560), (0, 20, 0.0, 0.1611),
])
def test_wilson_interval_matches_published_values(k, n, low, high):
    got = wilson_interval(k, n)
    assert got == pytest.approx((low, high), abs=1e-4)


def test_wilson_interval_covers_about_95_percent_by_simulation():
    rng = np.random.default_rng(0)
    for p, n in ((0.3, 20), (0.05, 40), (0.5, 10)):
        ks = rng.binomial(n, p, 20_000)
        covered = np.mean([low <= p <= high for low, high in (wilson_interval(int(k), n) for k in ks)])
        assert 0.90 < covered < 0.99, (p, n, covered)


def test_rate_text_and_edges():
    assert rate_text(5, 16, "diverged") == "5 of 16 diverged (95% CI 14–56%)"
    assert math.isnan(wilson_interval(0, 0)[0]) and rate_text(0, 0) == "0 of 0"
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
