"""Diagonal linear networks h(x) = <u*v, x>: batched full-batch GD and batch-size-1 SGD in float64.

R runs (step-size schedules x training seeds) advance together: parameters are (R, d) arrays and every
update is a handful of vectorized numpy operations.  numpy rather than torch here: at these sizes
(d <= 200) a step is bound by per-operation overhead, which is several times lower in numpy.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from .sweep import sgd_indices


def loss(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """||X beta - y||^2 / (2n) for each row of beta (R, d)."""
    residual = beta @ x.T - y
    return 0.5 * np.mean(residual * residual, axis=1)


def train(
    x: np.ndarray,
    y: np.ndarray,
    step_sizes: np.ndarray,
    algorithm: str,
    seeds,
    grid: np.ndarray,
    evaluate: Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]],
    init_scale: float = 0.1,
    progress=None,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, float]]:
    """Train R diagonal nets from u0 = init_scale * 1, v0 = 0 and evaluate them on the grid.

    step_sizes: (R, T) step of each update of each row.  algorithm: "gd" or "sgd" (then seeds[j]
    drives row j's sampling).  evaluate(u, v) -> metric -> (R,) is called at each grid iteration.
    progress: a sweep.BatchProgress (or None): one batch, advanced at each grid iteration.
    Returns (curves metric -> (R, G), final u, final v, seconds {"train", "metrics"}).
    """
    rows, iterations = step_sizes.shape
    n, d = x.shape
    u = np.full((rows, d), float(init_scale))
    v = np.zeros((rows, d))
    if algorithm == "sgd":
        samples = np.stack([sgd_indices(int(s), n, iterations) for s in seeds])
    elif algorithm != "gd":
        raise ValueError(f"algorithm must be 'gd' or 'sgd', got {algorithm!r}")
    curves: dict[str, list] = {}
    seconds = {"train": 0.0, "metrics": 0.0}
    scratch = [np.empty((rows, d)) for _ in range(3)]
    done = 0
    if progress is not None:
        progress.start_batch(rows, iterations, len(grid))
    with np.errstate(over="ignore", invalid="ignore"):
        for target in grid:
            start, advanced = time.perf_counter(), int(target) - done
            if target > done:
                etas = np.ascontiguousarray(step_sizes[:, done:target].T)
                if algorithm == "sgd":
                    idx = samples[:, done:target].T
                    _sgd_steps(u, v, x[idx], y[idx], etas, scratch)
                else:
                    _gd_steps(u, v, x, y, etas, scratch)
                done = int(target)
            middle = time.perf_counter()
            for name, value in evaluate(u, v).items():
                curves.setdefault(name, []).append(value)
            seconds["train"] += middle - start
            seconds["metrics"] += time.perf_counter() - middle
            if progress is not None:
                progress.advance(advanced)
    return {k: np.stack(v, axis=1).astype(np.float64) for k, v in curves.items()}, u, v, seconds


def _sgd_steps(u, v, xs, ys, etas, scratch):
    """In place: for each k, u, v <- u - eta e x*v, v - eta e x*u with e = <x, u*v> - y (all rows at once)."""
    beta, g, gv = scratch
    for k in range(len(etas)):
        xk = xs[k]
        np.multiply(u, v, out=beta)
        e = np.einsum("rd,rd->r", xk, beta)
        e -= ys[k]
        e *= etas[k]
        np.multiply(xk, e[:, None], out=g)
        np.multiply(g, v, out=gv)
        np.multiply(g, u, out=g)
        u -= gv
        v -= g


def _gd_steps(u, v, x, y, etas, scratch, batch_invariant: bool = True):
    """In place: full-batch gradient steps of L = ||X(u*v) - y||^2 / (2n).

    One BLAS matrix-vector product per run and product, not one matrix-matrix product for all runs: a
    BLAS gemm sums in an order that depends on how many rows are batched (and a single row goes through
    gemv instead), and GD at the edge of stability amplifies that rounding to O(1) differences.  numpy's
    matmul of a stack of (1, d) rows with one matrix calls gemv once per row, from C, with the same
    shapes and strides whatever the stack's height, so a run gives the same trajectory bit for bit
    whatever it is batched with, at BLAS speed.  batch_invariant=False: one gemm for all rows instead, the
    speed the benchmark holds this to.
    """
    beta, g, gv = scratch
    x_t = np.ascontiguousarray(x.T)
    x_over_n = x / len(x)
    stack = (lambda a: a[:, None, :]) if batch_invariant else (lambda a: a)  # (R, 1, d): a stack of row vectors
    residual = stack(np.empty((len(u), len(x))))
    beta_rows, g_rows = stack(beta), stack(g)
    for k in range(len(etas)):
        np.multiply(u, v, out=beta)
        np.matmul(beta_rows, x_t, out=residual)
        residual -= y
        np.matmul(residual, x_over_n, out=g_rows)
        g *= etas[k][:, None]
        np.multiply(g, v, out=gv)
        np.multiply(g, u, out=g)
        u -= gv
        v -= g
