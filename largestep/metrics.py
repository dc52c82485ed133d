"""Metrics of the paper, each implemented once and shared by the toy experiments and deep nets.

All functions accept numpy arrays or torch tensors and are batched where a leading axis makes sense.
"""
from __future__ import annotations

import numpy as np
import torch


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def l0_norm(beta, threshold: float = 1e-50) -> np.ndarray:
    """Number of coordinates with |beta_i| > threshold, along the last axis."""
    return (np.abs(_numpy(beta)) > threshold).sum(-1)


def rank_from_singular_values(s, tol: float) -> np.ndarray:
    """Number of singular values with s_k / s_max > tol, along the last axis (0 for an all-zero s)."""
    s = np.abs(_numpy(s))
    s_max = s.max(-1, keepdims=True)
    return np.where(s_max[..., 0] > 0, (s > tol * s_max).sum(-1), 0)


def rank_from_gram(gram, tol: float) -> np.ndarray:
    """Rank of phi from its Gram matrix phi phi^T (or phi^T phi, whichever is smaller).

    Eigenvalues are s_k^2, so the threshold is squared; computed in float64.  Only meaningful for
    tol well above sqrt(machine epsilon) of float64 (1e-8); for smaller tol use singular values.
    """
    g = torch.as_tensor(_numpy(gram), dtype=torch.float64)
    eig = torch.linalg.eigvalsh(g).clamp_min(0).numpy()
    return rank_from_singular_values(np.sqrt(eig), tol)


def diag_net_jacobian_rank(x_eval, u, v, tol: float = 1e-15) -> np.ndarray:
    """Rank of the Jacobian of the diagonal net h(x) = <u*v, x> at the points x_eval, batched over rows of u, v.

    Row i of phi is (x_i * v, x_i * u), so phi phi^T = X diag(u^2 + v^2) X^T and the singular values of phi
    are those of X diag(w), w = sqrt(u^2 + v^2).  With X of full column rank, the k-th largest lies in
    [sigma_min(X), sigma_max(X)] * (k-th largest w), which settles most counts without an SVD; an exact
    SVD (over the columns that could still count) is computed only for rows where the bracket straddles tol.
    """
    x = np.asarray(_numpy(x_eval), dtype=np.float64)
    u = np.atleast_2d(np.asarray(_numpy(u), dtype=np.float64))
    v = np.atleast_2d(np.asarray(_numpy(v), dtype=np.float64))
    w = np.sqrt(u * u + v * v)
    n_eval, d = x.shape
    ranks = np.zeros(len(w), dtype=np.int64)
    if n_eval >= d:
        sx = np.linalg.svd(x, compute_uv=False)
        lo, hi = sx[-1], sx[0]
    else:  # X diag(w) has at most n_eval non-zero singular values: no bracket, SVD every row
        lo, hi = 0.0, np.inf
    order = np.argsort(-w, axis=1)
    w_sorted = np.take_along_axis(w, order, axis=1)
    w_max = w_sorted[:, :1]
    with np.errstate(divide="ignore", invalid="ignore"):
        sure_in = (lo * w_sorted) > tol * (hi * w_max)
        maybe = (hi * w_sorted) > tol * (lo * w_max)
    if n_eval < d:
        sure_in[:] = False
    for row in range(len(w)):
        if w_max[row, 0] == 0 or not np.isfinite(w_max[row, 0]):
            continue
        n_in, n_maybe = int(sure_in[row].sum()), int(maybe[row].sum())
        if n_in == n_maybe:
            ranks[row] = n_in
        else:
            cols = order[row, :n_maybe]
            s = np.linalg.svd(x[:, cols] * w[row, cols], compute_uv=False)
            ranks[row] = rank_from_singular_values(s, tol)
    return ranks


def _tensor(a, dtype=None) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
    return t.to(dtype or (t.dtype if t.is_floating_point() else torch.float64))


def _correlation(phi: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between columns (neurons) across rows (examples); exactly symmetric."""
    centered = phi - phi.mean(0, keepdim=True)
    unit = centered / centered.norm(dim=0)  # a constant neuron gives NaNs, which compare False below
    corr = unit.T @ unit
    upper = torch.triu(corr, 1)
    return upper + upper.T + torch.diag(torch.diagonal(corr))


def deduplicated_neurons(phi, corr_threshold: float) -> torch.Tensor:
    """Indices of the neurons kept by the spec's greedy correlation scan, in index order.

    Neurons that are zero on every example are dropped.  Scanning the rest in index order, a neuron is
    removed when |corr| with any neuron still kept, other than itself, exceeds the threshold.  Every
    neuron after the current one is still kept when it is scanned, and a kept earlier neuron had no
    such partner after it (so not the current one), hence neuron i is removed exactly when some later
    live neuron j > i has |corr_ij| > threshold: the whole scan is one upper-triangular test.
    Runs on phi's device, in phi's floating dtype.
    """
    phi = _tensor(phi)
    live = torch.nonzero((phi != 0).any(0)).flatten()
    corr = _correlation(phi[:, live]).abs()
    duplicate = torch.triu(corr > corr_threshold, 1).any(1)
    return live[~duplicate]


def feature_sparsity(phi, corr_threshold: float = 0.99, normalize_rows: bool = True) -> float:
    """Feature sparsity of post-ReLU features phi (examples x neurons): lower is sparser, in [0, 1].

    normalize_rows=True (toy nets): each example's feature vector is first scaled to unit l2 norm
    (all-zero rows stay zero).  Near-duplicate neurons are removed (`deduplicated_neurons`), then the
    value is (non-zero entries over the surviving neurons) / (examples x all neurons).
    normalize_rows=False is the deep-net variant (no per-example scaling; the caller subsamples
    neurons).  Accepts numpy arrays or torch tensors (computed on the tensor's device; integer or
    numpy input in float64).
    """
    phi = _tensor(phi)
    if phi.numel() == 0:
        return 0.0
    if normalize_rows:
        norms = phi.norm(dim=1, keepdim=True)
        phi = torch.where(norms > 0, phi / torch.where(norms > 0, norms, 1), 0)
    kept = deduplicated_neurons(phi, corr_threshold)
    return float((phi[:, kept] != 0).sum().item() / phi.numel())


def effective_rank(features, eps: float = 0.0) -> float:
    """Entropy effective rank of row-normalized features: -sum p log p with p = s / sum(s), zeros dropped."""
    f = np.asarray(_numpy(features), dtype=np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    s = np.linalg.svd(f, compute_uv=False)
    s = s[s > eps]
    if s.size == 0:
        return 0.0
    p = s / s.sum()
    return float(-(p * np.log(p)).sum())
