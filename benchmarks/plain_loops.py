"""The same per-step work written plainly, the way research code usually is: one run at a time, a Python loop
over steps, numpy on one parameter vector (or one net), a Python loop over evaluation points for the Jacobian
and a full SVD.  Used by bench_experiments.py as the yardstick for per-step costs; not used by the package.

Each function does `steps` updates (or one evaluation) of ONE run and returns the seconds it took.
"""
from __future__ import annotations

import time

import numpy as np


def diag_sgd(x, y, steps: int, eta: float = 0.01, seed: int = 0) -> float:
    n, d = x.shape
    u, v = np.full(d, 0.1), np.zeros(d)
    order = np.random.default_rng(seed).integers(0, n, steps)
    start = time.perf_counter()
    for t in range(steps):
        i = order[t]
        error = x[i] @ (u * v) - y[i]
        grad_u, grad_v = error * x[i] * v, error * x[i] * u
        u, v = u - eta * grad_u, v - eta * grad_v
    return time.perf_counter() - start


def diag_gd(x, y, steps: int, eta: float = 0.01) -> float:
    n, d = x.shape
    u, v = np.full(d, 0.1), np.zeros(d)
    start = time.perf_counter()
    for _ in range(steps):
        residual = x @ (u * v) - y
        grad_beta = x.T @ residual / n
        u, v = u - eta * grad_beta * v, v - eta * grad_beta * u
    return time.perf_counter() - start



def diag_gd_batched(x, y, steps: int, rows: int, eta: float = 0.01) -> float:
    """`rows` GD runs at once in numpy, one matrix product per step for all rows: the fastest plain numpy
    batching, though not batch-invariant (a BLAS product sums in an order that depends on the number of rows)."""
    n, d = x.shape
    u, v = np.full((rows, d), 0.1), np.zeros((rows, d))
    x_over_n = x / n
    start = time.perf_counter()
    for _ in range(steps):
        grad_beta = ((u * v) @ x.T - y) @ x_over_n
        u, v = u - eta * grad_beta * v, v - eta * grad_beta * u
    return time.perf_counter() - start

def _forward(weights, biases, x):
    """Pre-activations and post-ReLU values of one net on one input x (d,)."""
    h, inputs, pre = x, [], []
    for l, (w, b) in enumerate(zip(weights, biases)):
        inputs.append(h)
        z = w @ h + (b if b is not None else 0.0)
        pre.append(z)
        h = np.maximum(z, 0.0) if l < len(weights) - 1 else z
    return inputs, pre, h[0]


def _gradients(weights, biases, x):
    """Gradient of the scalar output w.r.t. every parameter, by hand, for one input."""
    inputs, pre, out = _forward(weights, biases, x)
    delta = np.ones(1)
    grads = []
    for l in range(len(weights) - 1, -1, -1):
        grads.append((np.outer(delta, inputs[l]), delta if biases[l] is not None else None))
        if l > 0:
            delta = (weights[l].T @ delta) * (pre[l - 1] > 0)
    return out, grads[::-1]


def relu_sgd(layers, x, y, steps: int, eta: float = 1e-3, seed: int = 0) -> float:
    """layers: [(weight (out, in), bias (out,) or None)] of ONE net; batch-size-1 SGD on (h(x) - y)^2."""
    weights = [w.copy() for w, _ in layers]
    biases = [None if b is None else b.copy() for _, b in layers]
    order = np.random.default_rng(seed).integers(0, len(x), steps)
    start = time.perf_counter()
    for t in range(steps):
        i = order[t]
        out, grads = _gradients(weights, biases, x[i])
        scale = 2.0 * (out - y[i]) * eta
        for l, (gw, gb) in enumerate(grads):
            weights[l] -= scale * gw
            if gb is not None:
                biases[l] -= scale * gb
    return time.perf_counter() - start


def relu_jacobian_rank(layers, x_eval, tol: float) -> tuple[int, float]:
    """One evaluation of the Jacobian rank of ONE net: a loop over points, then a full SVD.  (rank, seconds)"""
    weights = [w for w, _ in layers]
    biases = [b for _, b in layers]
    start = time.perf_counter()
    rows = []
    for point in x_eval:
        _, grads = _gradients(weights, biases, point)
        rows.append(np.concatenate([g.ravel() for gw, gb in grads for g in (gw, gb) if g is not None]))
    s = np.linalg.svd(np.array(rows), compute_uv=False)
    rank = int((s > tol * s[0]).sum()) if s[0] > 0 else 0
    return rank, time.perf_counter() - start
