"""Diagonal linear networks h(x) = <u*v, x>: batched full-batch GD and batch-size-1 SGD in float64.

R runs (step-size schedules x training seeds) advance together: parameters are (R, d) arrays and every
update is a handful of vectorized numpy operations.  numpy rather than torch here: at these sizes
(d <= 200) a step is bound by per-operation overhead, which is several times lower in numpy.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .sweep import Batch, advance_live, diverged, march, sgd_indices


def loss(x: np.ndarray, y: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """||X beta - y||^2 / (2n) for each row of beta (R, d).

    Row by row (a stack of (1, d) products, as in `_gd_steps`): a run's loss is then the same to the last bit
    whatever it is batched with; one matrix product for all rows would sum in a batch-dependent order."""
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
    drives row j's sampling).  Returns wall seconds {"train", "metrics"} (see `sweep.march`).
    """
    rows, iterations = step_sizes.shape
    samples = None  # full batch
    if algorithm == "sgd":
        samples = np.stack([sgd_indices(int(s), len(x), iterations) for s in seeds])
    elif algorithm != "gd":
        raise ValueError(f"algorithm must be 'gd' or 'sgd', got {algorithm!r}")
    scratch = [np.empty((rows, x.shape[1])) for _ in range(3)]

    def advance(done, target):
        for start in range(done, target, CHUNK):
            _advance_live(u, v, x, y, step_sizes, samples, start, min(start + CHUNK, target), scratch)

    return march(stops, iterations, rows, advance, on_stop, progress)


# Updates taken per gather of SGD samples: bounds the (chunk, rows, d) array of sampled inputs whatever
# the spacing of the evaluation grid (a grid of two points would otherwise gather all T at once).
CHUNK = 512


def _advance_live(u, v, x, y, step_sizes, samples, start, stop, scratch):
    """Updates start..stop-1 of the rows whose parameters are still finite (`sweep.advance_live`)."""
    def step(params, rows):
        uu, vv = params
        work = [s[: len(uu)] for s in scratch]
        etas = np.ascontiguousarray(step_sizes[rows, start:stop].T)
        if samples is not None:
            idx = samples[rows, start:stop].T
            _sgd_steps(uu, vv, x[idx], y[idx], etas, work)
        else:
            _gd_steps(uu, vv, x, y, etas, work)

    advance_live([u, v], step)


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
    "train_loss", whose divergence (`sweep.diverged`) marks a row diverged and its metrics NaN from there on.
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
