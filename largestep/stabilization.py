"""The paper's one-dimensional model of loss stabilization, batched over step sizes and seeds.

Model h(x) = x theta^2, labels y = x theta*^2, x ~ U[x_min, x_max].  SGD on the loss
L(theta) = E[(h(x) - y)^2] / 4 = E[x^2] (theta^2 - theta*^2)^2 / 4 takes the step
theta <- theta + eta theta x^2 (theta*^2 - theta^2) with a fresh x each iteration.

For eta < (theta* x_max)^-2 every step is a contraction towards theta*: the loss goes to 0.  For eta in
((theta* x_min)^-2, 1.25 (theta* x_max)^-2) and theta_0 in (0, theta*) the iterate overshoots theta* at
every step but stays in a bounded interval: the loss stabilizes in a band bounded away from 0.
"""
from __future__ import annotations

import time

import numpy as np

from .streams import numpy_stream
from .seeds import diverged as has_diverged


def stability_threshold(theta_star: float, x_max: float) -> float:
    """Below this step size SGD converges: (theta* x_max)^-2."""
    return 1.0 / (theta_star * x_max) ** 2


def bouncing_interval(theta_star: float, x_min: float, x_max: float) -> tuple[float, float]:
    """Step sizes for which the iterate jumps across theta* forever: ((theta* x_min)^-2, 1.25 (theta* x_max)^-2).

    Empty (low >= high) unless x_max / x_min < sqrt(1.25).
    """
    return 1.0 / (theta_star * x_min) ** 2, 1.25 / (theta_star * x_max) ** 2


def mean_x_squared(x_min: float, x_max: float) -> float:
    """E[x^2] for x ~ U[x_min, x_max]."""
    return (x_max**3 - x_min**3) / (3.0 * (x_max - x_min))


def population_loss(theta: np.ndarray, theta_star: float, x_min: float, x_max: float) -> np.ndarray:
    """L(theta) = E[x^2] (theta^2 - theta*^2)^2 / 4."""
    gap = theta * theta - theta_star**2
    return 0.25 * mean_x_squared(x_min, x_max) * gap * gap


def sample_inputs(seed: int, iterations: int, x_min: float, x_max: float) -> np.ndarray:
    """The input stream of one training seed."""
    return numpy_stream("stabilization_inputs", seed).uniform(x_min, x_max, iterations)


def run_sgd(step_sizes: np.ndarray, seeds, iterations: int, grid: np.ndarray, *, theta0: float = 0.5,
            theta_star: float = 1.0, x_min: float = 1.0, x_max: float = 1.1) -> dict:
    """SGD on the 1-D model for R rows at once (row j: step size step_sizes[j], input stream seeds[j]).

    Returns {"theta", "loss"}: (R, G) values on the grid (after k updates for k in grid), NaN once a row
    diverged; "loss_min_last_half", "loss_max_last_half": (R,) extremes of the loss over every iteration
    of the second half (not just grid points); "diverged": (R,) bool; "diverged_at": (R,) first
    iteration with a non-finite iterate (-1 if none); "seconds".
    """
    start = time.perf_counter()
    etas = np.asarray(step_sizes, float)
    rows = len(etas)
    xs_squared = np.stack([sample_inputs(int(s), iterations, x_min, x_max) for s in seeds]) ** 2
    theta = np.full(rows, float(theta0))
    grid = np.asarray(grid)
    theta_curve = np.full((rows, len(grid)), np.nan)
    at_grid = np.searchsorted(grid, np.arange(iterations + 1))
    record = np.zeros(iterations + 1, bool)
    record[grid] = True
    low = np.full(rows, np.inf)
    high = np.full(rows, -np.inf)
    diverged_at = np.full(rows, -1)
    half = iterations // 2
    target = theta_star**2
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(iterations + 1):
            if record[k]:
                theta_curve[:, at_grid[k]] = theta
            if k >= half:
                loss = population_loss(theta, theta_star, x_min, x_max)
                np.fmin(low, loss, out=low)
                np.fmax(high, loss, out=high)
            if k == iterations:
                break
            theta = theta + etas * theta * xs_squared[:, k] * (target - theta * theta)
            bad = has_diverged(theta)
            if bad.any():
                diverged_at[bad & (diverged_at < 0)] = k + 1
                theta[bad] = np.nan  # stays NaN: a diverged row is stopped
    diverged = diverged_at >= 0
    low[diverged], high[diverged] = np.nan, np.nan
    with np.errstate(over="ignore"):  # the last grid values before a divergence may overflow the loss
        loss_curve = population_loss(theta_curve, theta_star, x_min, x_max)
    return {
        "theta": theta_curve,
        "loss": loss_curve,
        "loss_min_last_half": low,
        "loss_max_last_half": high,
        "diverged": diverged,
        "diverged_at": diverged_at,
        "seconds": time.perf_counter() - start,
    }
