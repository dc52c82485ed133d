"""Plain reference implementations (oracles) of the paper's metrics, for tests.

Each is written from the definition's words, with Python loops, a full SVD or per-example autograd:
slow and evidently right, and sharing no code with the fast versions in `largestep.metrics` or
`deep_nets`, so that a test comparing the two checks something.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two columns; NaN when either is constant (NaN never exceeds a threshold)."""
    a, b = a - a.mean(), b - b.mean()
    va, vb = float(a @ a), float(b @ b)
    return float(a @ b) / math.sqrt(va * vb) if va > 0 and vb > 0 else math.nan


def kept_neurons(phi: np.ndarray, threshold: float) -> list[int]:
    """The greedy de-duplication: drop neurons zero on every example, then scan in index order and remove a
    neuron when |corr| with any neuron still kept (other than itself) exceeds the threshold."""
    kept = [j for j in range(phi.shape[1]) if any(v != 0 for v in phi[:, j])]
    for j in list(kept):
        if any(abs(pearson(phi[:, j], phi[:, k])) > threshold for k in kept if k != j):
            kept.remove(j)
    return kept


def normalized_rows(features: np.ndarray) -> np.ndarray:
    """Each row (example) scaled to unit l2 norm in a loop; all-zero rows stay zero."""
    rows = np.array(features, dtype=np.float64)
    for i, row in enumerate(rows):
        norm = math.sqrt(sum(v * v for v in row))
        if norm > 0:
            rows[i] = row / norm
    return rows


def feature_sparsity(phi, threshold: float, normalize_rows: bool = True) -> float:
    """Toy nets' feature sparsity: non-zero entries over the kept neurons / (n * m), m counting all neurons."""
    phi = normalized_rows(phi) if normalize_rows else np.array(phi, dtype=np.float64)
    n, m = phi.shape
    return sum(int(v != 0) for j in kept_neurons(phi, threshold) for v in phi[:, j]) / (n * m)


def block_sparsity(features: np.ndarray, idx: np.ndarray, threshold: float = 0.95) -> tuple[float, float]:
    """The deep nets' block sparsity of post-ReLU features (N, neurons): (raw fraction of positive entries;
    after subsampling the neurons `idx` and the greedy de-duplication without row normalization, positive
    entries over the kept neurons / (N * subsampled neurons))."""
    assert (features >= 0).all(), "block features are post-ReLU: never-positive means zero everywhere"
    raw = float((features > 0).mean())
    phi = np.array(features[:, idx], dtype=np.float64)
    return raw, sum(int(v > 0) for j in kept_neurons(phi, threshold) for v in phi[:, j]) / phi.size


def svd_rank(matrix, tol: float) -> int:
    """Number of singular values with s_k / s_max > tol, from a full SVD (0 for the zero matrix)."""
    s = np.linalg.svd(np.asarray(matrix, dtype=np.float64), compute_uv=False)
    return int(np.sum(s > tol * s[0])) if s.size and s[0] > 0 else 0


def diag_net_jacobian(x: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Jacobian of the diagonal net h(x) = <u*v, x> at the rows of x, one autograd call per example:
    row i = gradient of h(x_i) w.r.t. (u, v)."""
    uu = torch.tensor(u, dtype=torch.float64, requires_grad=True)
    vv = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    rows = []
    for xi in torch.tensor(x, dtype=torch.float64):
        gu, gv = torch.autograd.grad((uu * vv * xi).sum(), (uu, vv))
        rows.append(torch.cat([gu, gv]))
    return torch.stack(rows).numpy()


def diag_net_jacobian_rank(x: np.ndarray, u: np.ndarray, v: np.ndarray, tol: float) -> int:
    return svd_rank(diag_net_jacobian(x, u, v), tol)


def module_jacobian(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Row i = gradient of the scalar output at x[i] w.r.t. every parameter, one backward pass per example."""
    rows = []
    for xi in x:
        net.zero_grad()
        net(xi[None]).sum().backward()
        rows.append(torch.cat([p.grad.flatten() for p in net.parameters()]))
    return torch.stack(rows)


def relu_net_jacobian(layers: list, row: int, x: np.ndarray) -> np.ndarray:
    """Jacobian of run `row` of stacked ReLU-net layers [(weight (R, out, in), bias (R, out) or None)] at the
    rows of x, one autograd call per example, columns ordered layer by layer (weight row-major, then bias)."""
    params = []
    for w, b in layers:
        params.append(torch.tensor(w[row], dtype=torch.float64, requires_grad=True))
        params.append(None if b is None else torch.tensor(b[row], dtype=torch.float64, requires_grad=True))
    live = [p for p in params if p is not None]
    rows = []
    for xi in torch.tensor(np.asarray(x), dtype=torch.float64):
        h = xi
        for l in range(len(layers)):
            weight, bias = params[2 * l], params[2 * l + 1]
            h = weight @ h + (0 if bias is None else bias)
            if l < len(layers) - 1:
                h = torch.relu(h)
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(h.sum(), live)]))
    return torch.stack(rows).numpy()


def relu_net_jacobian_rank(layers: list, row: int, x: np.ndarray, tol: float) -> int:
    return svd_rank(relu_net_jacobian(layers, row, x), tol)


def effective_rank(features: np.ndarray, eps: float = 0.0) -> float:
    """Entropy effective rank: singular values s of the row-normalized features, those <= eps dropped,
    p = s / sum(s), value -sum p log p (natural log)."""
    s = [v for v in np.linalg.svd(normalized_rows(features), compute_uv=False) if v > eps]
    p = [v / sum(s) for v in s]
    return -sum(pi * math.log(pi) for pi in p)
