"""Diagonal linear networks h(x) = <u*v, x>: batched full-batch GD and batch-size-1 SGD in float64.

R runs (step-size schedules x training seeds) advance together: parameters are (R, d) arrays, and each
stretch of updates between two evaluations is one call of a compiled loop over all rows (`kernels`),
in which each run's arithmetic is independent of the others'.  Metrics stay in numpy.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .seeds import Batch, advance_live, diverged, march, sgd_indices


def loss(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """||X beta - y||^2 / (2n) for each row of beta (R, d).

    Row by row (a stack of (1, d) products: numpy calls one BLAS matrix-vector product per row, with the same
    shapes whatever the stack's height): a run's loss is then the same to the last bit whatever it is batched
    with; one matrix product for all rows would sum in a batch-dependent order."""
    residual = (beta[:, None, :] @ x.T)[:, 0] - y
    return 0.5 * np.mean(residual * residual, axis=1)


def init(rows: int, d: int, init_scale: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """u0 = init_scale * 1, v0 = 0 for R rows: (u, v), each (R, d)."""
    return np.full((rows, d), float(init_scale)), np.zeros((rows, d))


def train(
    u: np.ndarray,
    v: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    step_sizes: np.ndarray,
    algorithm: str,
    seeds: Sequence[int],
    stops: np.ndarray,
    on_stop: Callable[[int], None],
    progress=None,
) -> dict[str, float]:
    """Train R diagonal nets, updating u, v (R, d) in place; on_stop(k) after k updates for each k in stops.

    step_sizes: (R, T) step of each update of each row.  algorithm: "gd" or "sgd" (then seeds[j]
    drives row j's sampling).  Returns wall seconds {"train", "metrics"} (see `seeds.march`).
    """
    rows, iterations = step_sizes.shape
    d = x.shape[1]
    if not (u.shape == v.shape == (rows, d) and u.dtype == v.dtype == np.float64 and y.shape == (len(x),)):
        # the compiled loops index without bounds checks: shapes are checked here, where the arrays enter
        raise ValueError(f"need u, v float64 of shape (R, d) = ({rows}, {d}) and y of shape ({len(x)},); got "
                         f"u {u.dtype} {u.shape}, v {v.dtype} {v.shape}, y {y.shape}")
    if algorithm == "sgd":
        samples = np.stack([sgd_indices(int(s), len(x), iterations) for s in seeds])
    elif algorithm == "gd":
        samples = None  # full batch
    else:
        raise ValueError(f"algorithm must be 'gd' or 'sgd', got {algorithm!r}")
    from . import kernels  # here, not at the top: importing numba costs 0.2 s that listing experiments need not pay

    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(y, dtype=np.float64)
    x_t_over_n = np.ascontiguousarray(x.T / len(x))

    def step(params, live, start, stop):
        """Updates start..stop-1 of the live rows (`seeds.advance_live`)."""
        uu, vv = params
        etas = np.ascontiguousarray(step_sizes[live, start:stop], dtype=np.float64)
        if samples is None:
            kernels.diag_gd_steps(uu, vv, x, x_t_over_n, y, etas)
        else:
            kernels.diag_sgd_steps(uu, vv, x, y, np.ascontiguousarray(samples[live, start:stop]), etas)

    def advance(done, target):
        advance_live([u, v], lambda params, live: step(params, live, done, target))

    return march(stops, iterations, rows, advance, on_stop, progress)


def train_runs(
    x: np.ndarray,
    y: np.ndarray,
    step_sizes: np.ndarray,
    algorithms: Sequence[str],
    seeds: Sequence[int],
    grid: np.ndarray,
    evaluate: Callable[[str, np.ndarray, np.ndarray], dict[str, np.ndarray]],
    init_scale: float = 0.1,
    progress=None,
) -> Batch:
    """Train rows of either algorithm (algorithms[j]: "gd" or "sgd") from `init` and evaluate them on the grid.

    GD and SGD rows are two programs, each batched over its rows.  evaluate(algorithm, u, v) ->
    metric -> (R, ...) values of that algorithm's rows, called at each grid iteration; it must return
    "train_loss", whose divergence (`seeds.diverged`) marks a row diverged and its metrics NaN from there on.
    Returns a sweep.Batch with curves metric -> (R, G, ...).
    """
    algorithms = np.asarray(algorithms)
    unknown = set(algorithms.tolist()) - {"gd", "sgd"}
    if unknown:
        raise ValueError(f"algorithm must be 'gd' or 'sgd', got {sorted(unknown)}")
    curves, seconds = {}, {}
    for algorithm in ("gd", "sgd"):
        rows = np.flatnonzero(algorithms == algorithm)
        if not rows.size:
            continue
        u, v = init(len(rows), x.shape[1], init_scale)
        found: dict[str, list] = {}

        def on_stop(k, algorithm=algorithm, u=u, v=v, found=found):
            for name, value in evaluate(algorithm, u, v).items():
                found.setdefault(name, []).append(value)

        spent = train(u, v, x, y, step_sizes[rows], algorithm, [seeds[j] for j in rows], grid, on_stop, progress)
        for name, values in found.items():
            values = np.stack(values, axis=1).astype(np.float64)
            curves.setdefault(name, np.full((len(algorithms), *values.shape[1:]), np.nan))[rows] = values
        for key, value in spent.items():
            seconds[key] = seconds.get(key, 0.0) + value
    bad = diverged(curves["train_loss"])
    for values in curves.values():  # a diverged row's metrics after its divergence are meaningless
        values[bad] = np.nan
    return Batch(curves=curves, diverged=bad.any(axis=1), seconds=seconds)

