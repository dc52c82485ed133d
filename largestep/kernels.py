"""Compiled update loops (numba) of the toy nets: the diagonal nets' GD and SGD, the ReLU nets' SGD; R runs per call.

Why compiled: at the paper's sizes (diagonal nets n <= 80, d <= 200; ReLU nets at most 100 neurons, d <= 5) a
step is a few thousand multiply-adds at most, so a numpy step is bound by the cost of its ~10 calls (10-17 us
for 4 runs), not by arithmetic.  Compiled, a diagonal-net GD run-step at n=40, d=100 takes about 1 us, an SGD
run-step 0.1 us.

Batch invariance: each run is its own loop over steps, with the same operations in the same order
whatever the other rows hold or how many there are, so a run's trajectory is the same to the last bit
alone or in any batch (at the edge of stability, rounding grows to O(1) differences, so this matters).
Sums may be reassociated (`reassoc`: vectorized dot products) and multiply-adds fused (`contract`): both
fixed at compile time for this machine's instruction set.  No other fast-math flag: a diverging run
must overflow to inf and NaN as IEEE arithmetic does, since that is how divergence is detected.
Bits therefore match on one machine, not across machines with other vector units.

An SGD row whose prediction turns infinite or NaN stops there: its loss is infinite from then on, so it is
flagged diverged at the next evaluation whatever it would have computed, and a sweep past the edge of
divergence does not spend the rest of training on NaN arithmetic.
"""
from __future__ import annotations

import sys
import warnings

import numpy as np
from numba import njit

_FAST = {"reassoc", "contract"}

# Imported by numba's first call in a process, for features these loops do not use: scipy.linalg (np.dot and
# np.convolve through BLAS) and cffi (typing cffi functions).  Where installed, they take 0.3-0.4 s of that call.
_UNUSED_BY_THE_LOOPS = ("scipy", "scipy.linalg", "cffi")


def _load_numba_registries() -> None:
    """numba's first call in a process loads its typing and lowering registries for all of numpy.  Done here,
    with the modules of `_UNUSED_BY_THE_LOOPS` that are not imported yet held back (an import of them fails
    during the load, which numba takes as "not installed"), then released for the rest of the process.

    What numba then lacks, in this process only: np.dot's BLAS path inside np.convolve/np.correlate (it falls
    back to a loop) and typing cffi functions.  np.dot and np.linalg themselves import scipy when first
    compiled, so they still work.  Where numba has already loaded its registries, this changes nothing.
    """
    from numba.core.registry import cpu_target

    held = [name for name in _UNUSED_BY_THE_LOOPS if name not in sys.modules]
    for name in held:
        sys.modules[name] = None  # Python's documented way to make an import raise ImportError
    try:
        cpu_target.target_context.refresh()
    finally:
        for name in held:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]


def _compiled(**options):
    """numba's njit with its on-disk cache (compiled once per machine, about 2 s), or, where numba finds no
    writable place for that cache (a read-only install and no writable home), compiled in every process."""
    def wrap(function):
        try:
            return njit(cache=True, **options)(function)
        except RuntimeError as error:  # numba: "cannot cache function ...: no locator available"
            warnings.warn(f"{error}; compiling {function.__name__} in this process instead (about 1 s; set "
                          "NUMBA_CACHE_DIR to a writable directory to keep it)", RuntimeWarning, stacklevel=2)
            return njit(**options)(function)
    return wrap


@_compiled(fastmath=_FAST, inline="always")
def _matvec(a, b, out):
    """out[i] = sum_j a[i, j] b[j]; four rows at a time, so that each b[j] loaded serves four sums."""
    m, k = a.shape
    i = 0
    while i + 4 <= m:
        s0 = s1 = s2 = s3 = 0.0
        for j in range(k):
            bj = b[j]
            s0 += a[i, j] * bj
            s1 += a[i + 1, j] * bj
            s2 += a[i + 2, j] * bj
            s3 += a[i + 3, j] * bj
        out[i], out[i + 1], out[i + 2], out[i + 3] = s0, s1, s2, s3
        i += 4
    while i < m:
        s = 0.0
        for j in range(k):
            s += a[i, j] * b[j]
        out[i] = s
        i += 1


@_compiled(fastmath=_FAST)
def diag_gd_steps(u, v, x, x_t_over_n, y, etas):
    """In place, K full-batch steps of L = ||X(u*v) - y||^2 / (2n) for each row of u, v (R, d).

    x (n, d); x_t_over_n = X^T / n, (d, n), C-contiguous; etas (R, K): row r's step size at each step.
    With g = X^T (X(u*v) - y) / n:  u <- u - eta g*v,  v <- v - eta g*u (both from the old u, v).
    """
    rows, d = u.shape
    beta, residual, g = np.empty(d), np.empty(y.shape[0]), np.empty(d)
    for r in range(rows):
        for k in range(etas.shape[1]):
            eta = etas[r, k]
            for j in range(d):
                beta[j] = u[r, j] * v[r, j]
            _matvec(x, beta, residual)
            for i in range(residual.shape[0]):
                residual[i] -= y[i]
            _matvec(x_t_over_n, residual, g)
            for j in range(d):
                step = g[j] * eta
                old_u = u[r, j]
                u[r, j] = old_u - step * v[r, j]
                v[r, j] = v[r, j] - step * old_u


@_compiled(fastmath=_FAST)
def diag_sgd_steps(u, v, x, y, samples, etas):
    """In place, K steps of batch-size-1 SGD on (<x_i, u*v> - y_i)^2 / 2 for each row of u, v (R, d).

    samples (R, K): the example index of row r at each step; etas (R, K): its step sizes.
    With e = <x_i, u*v> - y_i:  u <- u - eta e x_i*v,  v <- v - eta e x_i*u.
    """
    rows, d = u.shape
    for r in range(rows):
        for k in range(etas.shape[1]):
            i = samples[r, k]
            e = 0.0
            for j in range(d):
                e += x[i, j] * (u[r, j] * v[r, j])
            if not np.isfinite(e):  # diverged (its loss is infinite from here on): nothing more to compute
                break
            e = (e - y[i]) * etas[r, k]
            for j in range(d):
                step = x[i, j] * e
                old_u = u[r, j]
                u[r, j] = old_u - step * v[r, j]
                v[r, j] = v[r, j] - step * old_u


@_compiled(fastmath=_FAST)
def relu_sgd_steps(params, shapes, weight_at, bias_at, x, y, samples, etas):
    """In place, K steps of batch-size-1 SGD on (h(x_i) - y_i)^2 for each row of params (R, P): ReLU nets.

    Row r of params holds one net, flat: each layer's weight (out, in) row-major at weight_at[l], its bias at
    bias_at[l] (-1: none).  shapes (L, 2): (out, in) per layer; ReLU after every layer but the last, whose
    single output is h(x).  samples, etas (R, K): row r's example index and step size at each step.
    The step size is folded into the output error once (delta = 2 eta (h - y)), so the backward pass carries
    eta dL/dz; a hidden unit's ReLU derivative is (its post-ReLU value > 0), 0 at the kink as in autograd,
    applied as a multiplication by 1 or 0 so that an infinite error still turns into NaN.  Each layer's
    error is propagated below with the weights before their update.
    """
    rows = params.shape[0]
    n_layers = shapes.shape[0]
    act_at = np.zeros(n_layers + 1, np.int64)  # the input of layer l lies at act_at[l] in `acts`
    for l in range(n_layers):
        act_at[l + 1] = act_at[l] + shapes[l, 1]
    acts = np.empty(act_at[n_layers])
    widest = 0
    for l in range(n_layers):
        widest = max(widest, shapes[l, 0], shapes[l, 1])
    delta, below = np.empty(widest), np.empty(widest)
    for r in range(rows):
        p = params[r]
        for k in range(etas.shape[1]):
            example = samples[r, k]
            for i in range(shapes[0, 1]):
                acts[i] = x[example, i]
            out = 0.0
            for l in range(n_layers):
                fan_out, fan_in = shapes[l, 0], shapes[l, 1]
                w, h = weight_at[l], act_at[l]
                for o in range(fan_out):
                    s = 0.0
                    for i in range(fan_in):
                        s += p[w + o * fan_in + i] * acts[h + i]
                    if bias_at[l] >= 0:
                        s += p[bias_at[l] + o]
                    if l < n_layers - 1:
                        acts[act_at[l + 1] + o] = s if not s <= 0.0 else 0.0  # ReLU; a NaN stays NaN
                    else:
                        out = s
            if not np.isfinite(out):  # diverged (its loss is infinite from here on): nothing more to compute
                break
            delta[0] = (out - y[example]) * (2.0 * etas[r, k])
            for l in range(n_layers - 1, -1, -1):
                fan_out, fan_in = shapes[l, 0], shapes[l, 1]
                w, h = weight_at[l], act_at[l]
                if l > 0:
                    for i in range(fan_in):
                        s = 0.0
                        for o in range(fan_out):
                            s += p[w + o * fan_in + i] * delta[o]
                        below[i] = s * (1.0 if acts[h + i] > 0.0 else 0.0)
                for o in range(fan_out):
                    d_o = delta[o]
                    for i in range(fan_in):
                        p[w + o * fan_in + i] -= d_o * acts[h + i]
                    if bias_at[l] >= 0:
                        p[bias_at[l] + o] -= d_o
                if l > 0:
                    for i in range(fan_in):
                        delta[i] = below[i]


_load_numba_registries()
