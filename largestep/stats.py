"""The statistics every result is stated with: survivors' medians and quartiles, rates with a 95% interval.

Every statistic of a run is over its surviving seeds (a diverged seed's metrics are NaN from its divergence
on): `learner_values` is the one place that picks them, for the results records, claims, tables and figures.

A divergence rate k of n is an estimate: 0 of 5 is not "none diverge" (its interval reaches 43%).  Rates are
given with Wilson's score interval, which stays inside [0, 1], is not degenerate at k = 0 or k = n (unlike the
normal approximation), and needs no special functions (unlike Clopper-Pearson's beta quantiles).
"""
from __future__ import annotations

import math

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5% quantile


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The 95% Wilson score interval of a rate observed as k successes in n tries ((nan, nan) when n = 0)."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # at k = 0 (k = n) the bound is exactly 0 (1): rounding must not make it a hair off
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def rate_text(k: int, n: int, what: str = "") -> str:
    """'5 of 16 diverged (95% CI 14–56%)': a count with its interval, for legends, claims and generated text."""
    low, high = wilson_interval(k, n)
    interval = "" if n == 0 else f" (95% CI {100 * low:.0f}–{100 * high:.0f}%)"
    return f"{k} of {n}{' ' + what if what else ''}{interval}"


def counted(entry: dict) -> bool:
    """Whether a per-seed record counts in a run's statistics: the seed survived and did not collapse."""
    return not entry["diverged"] and not entry.get("collapsed", False)


def learner_values(run: dict, metric: str) -> np.ndarray:
    """The final `metric` of every seed of a run that learned: it survived and did not collapse (a record of the
    results schema; a collapsed seed's dead layer would count as perfectly sparse); values that were not
    measured (NaN, or None in a raw JSON file) are left out."""
    values = np.array([s[metric] for s in run["final_per_seed"] if counted(s) and s.get(metric) is not None],
                      dtype=float)
    return values[~np.isnan(values)]


def learner_median(run: dict, metric: str) -> float:
    """The median final `metric` over the seeds that learned (NaN when none did)."""
    values = learner_values(run, metric)
    return float(np.median(values)) if values.size else math.nan


def learner_mean(run: dict, metric: str) -> float:
    values = learner_values(run, metric)
    return float(np.mean(values)) if values.size else math.nan


def learner_spread(run: dict, metric: str, fmt: str = ".3g") -> str:
    """'median [min, max]' over the seeds that learned, or 'no survivor'."""
    v = learner_values(run, metric)
    return f"{np.median(v):{fmt}} [{v.min():{fmt}}, {v.max():{fmt}}]" if v.size else "no survivor"
