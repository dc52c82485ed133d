"""Fully connected ReLU nets (two-layer and multi-layer): batched batch-size-1 SGD on plain MSE, in float64.

A net is a list of layers (weight, bias): weight (R, out, in), bias (R, out) or None, with R runs stacked
on the leading axis; ReLU after every layer but the last, one scalar output.  The R runs (schedules x
training seeds) advance together: each stretch of steps between two evaluations is one call of a compiled
loop (`kernels.relu_sgd_steps`) with a hand-written backward pass, each run's arithmetic independent of the
others'.  float64 costs nothing extra at these sizes (at most 100 neurons, d <= 5) and keeps the
edge-of-stability runs free of float32 rounding.  Metrics: numpy (`jacobian_factor`), and torch.func on the
same parameters (`torch_params`, `forward_one`) for what needs autograd.
"""
from __future__ import annotations

import functools
import math
from typing import Callable, Sequence

import numpy as np

from .streams import numpy_stream
from .seeds import advance_live, march, sgd_indices

Layer = tuple  # (weight (R, out, in), bias (R, out) or None)


def init_rng(seed: int) -> np.random.Generator:
    """The initialization stream of one training seed (every schedule of a seed starts from the same net)."""
    return numpy_stream("relu_init", seed)


# ---- initializations: each returns the layers of ONE net (R = 1); `stack` puts several on the run axis


def two_layer_gaussian(rng, d: int, m: int, scale_hidden: float, scale_output: float) -> list[Layer]:
    """h(x) = a . relu(W x), no biases: W = scale_hidden * N(0, 1), a = scale_output * N(0, 1)."""
    w = scale_hidden * rng.standard_normal((1, m, d))
    a = scale_output * rng.standard_normal((1, 1, m))
    return [(w, None), (a, None)]


def two_layer_1d(rng, m: int, w_scale: float = 2.5, b_scale: float = 2.5, a_scale: float = 4.0) -> list[Layer]:
    """The 1-D regression's net h(x) = a . relu(w x + b): w = 2.5 * (random +-1), b = 2.5 N(0,1), a = 4 N(0,1)."""
    w = w_scale * rng.choice([-1.0, 1.0], size=(1, m, 1))
    b = b_scale * rng.standard_normal((1, m))
    a = a_scale * rng.standard_normal((1, 1, m))
    return [(w, b), (a, None)]


def multi_layer_gaussian(rng, d: int, widths: Sequence[int], scale: float, biases: bool = True) -> list[Layer]:
    """Weights scale * N(0, 1); biases (on every layer, output included) PyTorch's default U(+-1/sqrt(fan_in))."""
    sizes = [d, *widths, 1]
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = scale * rng.standard_normal((1, fan_out, fan_in))
        b = rng.uniform(-1, 1, (1, fan_out)) / math.sqrt(fan_in) if biases else None
        layers.append((w, b))
    return layers


def stack(nets: Sequence[list[Layer]]) -> list[Layer]:
    """Stack single nets (R = 1 each) on the run axis; returns fresh arrays (training updates them in place)."""
    return [(np.concatenate([n[l][0] for n in nets]),
             None if nets[0][l][1] is None else np.concatenate([n[l][1] for n in nets]))
            for l in range(len(nets[0]))]


def copy_layers(layers: list[Layer]) -> list[Layer]:
    return [(w.copy(), None if b is None else b.copy()) for w, b in layers]


def n_parameters(layers: list[Layer]) -> int:
    return sum(w[0].size + (0 if b is None else b[0].size) for w, b in layers)


# ---- evaluation (numpy, batched over runs and examples)


def hidden_features(layers: list[Layer], x: np.ndarray) -> list[np.ndarray]:
    """Post-ReLU features of every hidden layer on inputs x (n, d): a list of (R, n, width) arrays."""
    h, features = x, []
    for w, b in layers[:-1]:
        h = h @ np.swapaxes(w, 1, 2)
        if b is not None:
            h += b[:, None, :]
        np.maximum(h, 0.0, out=h)  # in place: a fresh array per layer is a page-faulting allocation at n = 1000
        features.append(h)
    return features


def predict(layers: list[Layer], x: np.ndarray, features: list[np.ndarray] | None = None) -> np.ndarray:
    """Outputs (R, n) of the R nets on inputs x (n, d); `features`: hidden_features(layers, x) if already at hand."""
    if features is None:
        features = hidden_features(layers, x)
    h = features[-1] if features else np.broadcast_to(x, (len(layers[0][0]), *x.shape))
    w, b = layers[-1]
    out = (h @ np.swapaxes(w, 1, 2))[..., 0]
    return out + b if b is not None else out


def mse(layers: list[Layer], x: np.ndarray, y: np.ndarray, features: list[np.ndarray] | None = None) -> np.ndarray:
    """Plain mean squared error (no 1/2) of each of the R nets (`features` as in `predict`)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = predict(layers, x, features) - y
        return np.mean(r * r, axis=1)


def _layer_inputs(layers: list[Layer], x: np.ndarray) -> list[np.ndarray]:
    """[input of each layer (R, n, fan_in)]: x broadcast over the runs, then each hidden layer's post-ReLU
    features (the last entry: the features the output layer reads)."""
    rows = len(layers[0][0])
    h = np.broadcast_to(np.asarray(x, np.float64), (rows, *np.shape(x)))
    inputs = []
    for w, b in layers[:-1]:
        inputs.append(h)
        h = h @ np.swapaxes(w, 1, 2)
        if b is not None:
            h += b[:, None, :]
        np.maximum(h, 0.0, out=h)
    inputs.append(h)
    return inputs


def _lower_blocks(layers: list[Layer], inputs: list[np.ndarray], delta: np.ndarray, top: int) -> list[np.ndarray]:
    """Gradient columns of layers top, top - 1, ..., 0 (each: its weight, then its bias, in reverse order), given
    delta (R, n, out of layer top): the output's derivative w.r.t. layer top's pre-activations."""
    rows, n = delta.shape[:2]
    blocks = []
    for l in range(top, -1, -1):
        w, b = layers[l]
        h = inputs[l]
        if b is not None:
            blocks.append(delta)
        blocks.append((delta[:, :, :, None] * h[:, :, None, :]).reshape(rows, n, -1))
        if l > 0:
            delta = (delta @ w) * (h > 0)
    return blocks


def per_example_gradients(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """phi (R, n, P): row i of run r is the gradient of run r's output at x[i] w.r.t. all its parameters.

    Columns in `torch_params` order (each layer's weight row-major, then its bias).  One forward and one
    backward pass for all runs and points at once: the gradient w.r.t. a layer's weight is the outer
    product of the output's derivative w.r.t. the layer's pre-activations (delta) with the layer's
    input, and w.r.t. its bias delta itself.  ReLU's derivative is (post-ReLU value > 0), as in training
    and autograd.  The same per-example gradients as `forward_one` through torch.func, without its
    per-call tracing: the metric's cost is then the linear algebra alone.
    """
    inputs = _layer_inputs(layers, x)
    delta = np.ones((len(layers[0][0]), len(x), 1))  # d output / d output
    return np.concatenate(_lower_blocks(layers, inputs, delta, len(layers) - 1)[::-1], axis=2)


def jacobian_factor(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """F (R, n, k) with F F^T = phi phi^T for phi = `per_example_gradients`: the same singular values, so the
    same rank, from fewer columns (in exact arithmetic; rounding moves them by ~1e-16 of the largest).

    The last hidden layer and the output weights a: neuron j's incoming parameters theta_j = (w_j, b_j)
    act on u_i = (input of the layer at x_i, 1), its mask m_ij = [theta_j . u_i > 0].  Their columns,
    a_j m_ij u_i and the output weight's m_ij (theta_j . u_i), are m_j * U [a_j I, theta_j]: k + 1 columns
    spanning k, contributing m_j * U (a_j^2 I + theta_j theta_j^T) U^T * m_j to phi phi^T (the rescaling
    symmetry of a ReLU neuron, written as a factorization).  Neurons with the same mask on the points
    add their k x k blocks; each distinct live mask then gives k columns m_g * U L_g, L_g L_g^T the
    summed block.  Dead neurons give none.  The layers below keep their gradient columns, the output
    bias its column of ones.  Two-layer net of the 1-D regression: 300 columns -> 2 per distinct kink.
    """
    if len(layers) < 2:
        return per_example_gradients(layers, x)
    inputs = _layer_inputs(layers, x)
    rows, n, _ = inputs[-1].shape
    top = len(layers) - 2  # the last hidden layer
    w, b = layers[top]
    u, theta = inputs[top], w
    if b is not None:
        u = np.concatenate([u, np.ones((rows, n, 1))], axis=2)
        theta = np.concatenate([w, b[:, :, None]], axis=2)
    output_weights = layers[-1][0][:, 0, :]
    mask = inputs[-1] > 0
    blocks = [_merged_neurons(mask, u, theta, output_weights)]
    if layers[-1][1] is not None:
        blocks.append(np.ones((rows, n, 1)))
    if top > 0:
        delta = (output_weights[:, None, :] * mask) @ w * (inputs[top] > 0)
        blocks += _lower_blocks(layers, inputs, delta, top - 1)
    return np.concatenate(blocks, axis=2) if len(blocks) > 1 else blocks[0]


def _merged_neurons(mask: np.ndarray, u: np.ndarray, theta: np.ndarray, output_weights: np.ndarray) -> np.ndarray:
    """The columns m_g * U L_g of `jacobian_factor`, k per group, zero-padded to the batch's largest count of
    groups: mask (R, n, m), u (R, n, k), theta (R, m, k), output_weights (R, m).  Built transposed (a group's
    k columns as k contiguous rows of n: the masking then runs along memory) and returned as a view."""
    rows, n, m = mask.shape
    k = u.shape[2]
    by_run = np.arange(rows)[:, None]
    masks = np.ascontiguousarray(np.swapaxes(mask, 1, 2))  # (R, m, n)
    first = _first_equal_row(masks)
    member = (first[:, None, :] == np.arange(m)[None, :, None]) & masks.any(2)[:, None, :]  # (R, group, neuron)
    leader = member.any(2)
    width = max(int(leader.sum(1).max(initial=0)), 1)
    order = np.argsort(~leader, axis=1, kind="stable")[:, :width]  # the groups first (padding: memberless)
    blocks = output_weights[:, :, None, None] ** 2 * np.eye(k) + theta[:, :, :, None] * theta[:, :, None, :]
    merged = member[by_run, order].astype(np.float64) @ blocks.reshape(rows, m, k * k)
    factors = psd_cholesky(merged.reshape(rows, width, k, k))
    columns = np.swapaxes(factors, 2, 3).reshape(rows, width * k, k) @ np.swapaxes(u, 1, 2)  # (R, width k, n)
    columns = columns.reshape(rows, width, k, n)
    columns *= masks[by_run, order][:, :, None, :]
    return np.swapaxes(columns.reshape(rows, width * k, n), 1, 2)


def _first_equal_row(masks: np.ndarray) -> np.ndarray:
    """(R, m): for each row j of each boolean matrix masks (R, m, n), the first row equal to it.  Rows are keyed
    by a random projection and the keys' verdict checked; a collision of keys (never seen) falls back to
    comparing the counts of common entries, exact in float64."""
    as_float = masks.astype(np.float64)
    keys = as_float @ _key_weights(masks.shape[2])
    first = (keys[:, :, None] == keys[:, None, :]).argmax(2)
    if np.array_equal(masks[np.arange(len(masks))[:, None], first], masks):
        return first
    overlap = as_float @ np.swapaxes(as_float, 1, 2)
    count = overlap.diagonal(axis1=1, axis2=2)
    return ((overlap == count[:, :, None]) & (overlap == count[:, None, :])).argmax(2)


@functools.lru_cache(maxsize=8)
def _key_weights(n: int) -> np.ndarray:
    weights = np.random.default_rng(0).random(n)
    weights.flags.writeable = False
    return weights


def psd_cholesky(a: np.ndarray) -> np.ndarray:
    """Lower-triangular L (..., k, k) with L L^T = a for symmetric positive semi-definite a, batched (a loop
    over the k columns; k is small).  Where rounding leaves a pivot <= 0 (a singular there) the column is
    zero: exact for exactly singular a, else an error of the order of rounding in a."""
    a = np.array(a, dtype=np.float64)
    k = a.shape[-1]
    factor = np.zeros_like(a)
    for c in range(k):
        pivot = a[..., c, c:c + 1]
        positive = pivot > 0
        column = np.divide(a[..., c:, c], np.sqrt(pivot, where=positive, out=np.ones_like(pivot)),
                           out=factor[..., c:, c], where=positive)
        if c + 1 < k:
            a[..., c + 1:, c + 1:] -= column[..., 1:, None] * column[..., None, 1:]
    return factor


# ---- torch.func view of the same nets, for per-example gradients


def torch_params(layers: list[Layer], rows=None) -> dict:
    """The stacked parameters as a dict of torch tensors (views of the numpy arrays, no copy)."""
    import torch  # here, not at the top: training and the numpy metrics need no torch

    params = {}
    for l, (w, b) in enumerate(layers):
        params[f"layer{l}.weight"] = torch.from_numpy(w if rows is None else w[rows])
        if b is not None:
            params[f"layer{l}.bias"] = torch.from_numpy(b if rows is None else b[rows])
    return params


def forward_one(params: dict, x):
    """Scalar output of one net (unstacked params) on one input x (d,): the function torch.func differentiates."""
    import torch

    n_layers = sum(k.endswith(".weight") for k in params)
    h = x
    for l in range(n_layers):
        h = params[f"layer{l}.weight"] @ h
        if f"layer{l}.bias" in params:
            h = h + params[f"layer{l}.bias"]
        if l < n_layers - 1:
            h = torch.relu(h)
    return h[0]


# ---- training


def train(
    layers: list[Layer],
    x: np.ndarray,
    y: np.ndarray,
    step_sizes: np.ndarray,
    seeds: Sequence[int],
    stops: np.ndarray,
    on_stop: Callable[[int], None],
    progress=None,
    stopped: np.ndarray | None = None,
) -> dict[str, float]:
    """Batch-size-1 SGD on the loss (h(x_i) - y_i)^2, R runs at once, updating `layers` in place.

    step_sizes: (R, T) step of each update of each row; seeds[j] drives row j's sampling stream.
    on_stop(k) is called after k updates for each k in `stops` (sorted, within [0, T]).  stopped: an (R,)
    mask the caller may set as it evaluates (rows it has flagged diverged); those rows are not trained further
    (a row's loss passes the divergence threshold, float32's range, long before its float64 parameters overflow).
    Returns wall seconds {"train": ..., "metrics": ...} (see `seeds.march`).
    """
    rows, iterations = step_sizes.shape
    samples = np.stack([sgd_indices(int(s), len(x), iterations) for s in seeds])  # (R, T)
    x = np.ascontiguousarray(x, dtype=np.float64)
    y = np.ascontiguousarray(np.reshape(y, len(x)), dtype=np.float64)
    shapes, weight_at, bias_at = flat_layout(layers)
    if x.shape[1] != shapes[0, 1] or shapes[-1, 0] != 1:
        raise ValueError(f"the nets take {shapes[0, 1]} inputs to {shapes[-1, 0]} outputs; need x (n, d) = "
                         f"{x.shape} with d = {shapes[0, 1]} and one output")
    from . import kernels  # here, not at the top: importing numba costs 0.2 s that listing experiments need not pay

    params = [a for layer in layers for a in layer if a is not None]

    def advance(done, target):
        def step(live_params, rows):  # only rows whose parameters are finite (`advance_live`)
            flat = np.concatenate([a.reshape(len(a), -1) for a in live_params], axis=1)
            kernels.relu_sgd_steps(flat, shapes, weight_at, bias_at, x, y,
                                   np.ascontiguousarray(samples[rows, done:target]),
                                   np.ascontiguousarray(step_sizes[rows, done:target], dtype=np.float64))
            start = 0
            for a in live_params:  # back in place (a reshaped view of `a` would be a copy if `a` were not contiguous)
                a[...] = flat[:, start:start + a[0].size].reshape(a.shape)
                start += a[0].size

        advance_live(params, step, stopped)

    return march(stops, iterations, rows, advance, on_stop, progress)


def flat_layout(layers: list[Layer]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each layer lies in one run's parameters laid end to end (weights row-major, each followed by its
    bias): (shapes (L, 2) of (out, in), weight offsets (L,), bias offsets (L,), -1 where a layer has no bias)."""
    shapes, weight_at, bias_at, at = [], [], [], 0
    for w, b in layers:
        if w.dtype != np.float64 or (b is not None and (b.dtype != np.float64 or b.shape != w.shape[:2])):
            raise ValueError("layers must be float64 weights (R, out, in) with biases (R, out) or None")
        shapes.append(w.shape[1:])
        weight_at.append(at)
        at += w.shape[1] * w.shape[2]
        bias_at.append(at if b is not None else -1)
        at += w.shape[1] if b is not None else 0
    for (_, fan_in), (fan_out, _) in zip(shapes[1:], shapes[:-1]):
        if fan_in != fan_out:
            raise ValueError(f"layer widths do not chain: {shapes}")
    as_int = lambda a: np.array(a, dtype=np.int64).reshape(len(layers), -1)  # noqa: E731
    return as_int(shapes), as_int(weight_at)[:, 0], as_int(bias_at)[:, 0]
