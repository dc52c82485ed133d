"""Metrics of the paper, each implemented once and shared by the toy experiments and deep nets.

All functions accept numpy arrays or torch tensors and are batched where a leading axis makes sense.
torch is imported by the functions that use it, not here: the numpy-only experiments never load it.
"""
from __future__ import annotations

import sys

import numpy as np


def _is_tensor(a) -> bool:
    torch = sys.modules.get("torch")  # a tensor can only exist once torch is imported
    return torch is not None and isinstance(a, torch.Tensor)


def _numpy(a) -> np.ndarray:
    return a.detach().cpu().numpy() if _is_tensor(a) else np.asarray(a)


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
    eig = np.linalg.eigvalsh(np.asarray(_numpy(gram), dtype=np.float64)).clip(min=0)
    return rank_from_singular_values(np.sqrt(eig), tol)


class DiagNetJacobianRank:
    """Rank of the Jacobian of the diagonal net h(x) = <u*v, x> at fixed points x_eval, batched over rows of u, v.

    Row i of phi is (x_i * v, x_i * u), so phi phi^T = X diag(u^2 + v^2) X^T: the singular values of phi are
    those of A = X diag(w), w = sqrt(u^2 + v^2).  Cheap bounds settle most counts without an SVD.  With the
    columns sorted by w (descending) and c_j the column norms of X:
      s_k >= sigma_min(X) w_k                                   (X of full column rank),
      s_k <= min(sigma_max(X) w_k, ||A[:, k:]||_F)              (interlacing: drop the first k-1 columns),
      max_j c_j w_j <= s_max <= min(sigma_max(X) w_1, ||A||_F).
    Rows where the bounds straddle the threshold get an exact SVD, batched, of R[:, cols] diag(w[cols]) over
    the columns that could still count, where X = QR (same singular values as X diag(w), half the rows).
    Built once per evaluation set: the decompositions of X are reused at every call.
    """

    def __init__(self, x_eval, tol: float = 1e-15):
        x = np.asarray(_numpy(x_eval), dtype=np.float64)
        self.tol = tol
        n_eval, d = x.shape
        sx = np.linalg.svd(x, compute_uv=False)
        self.lo = sx[-1] if n_eval >= d else 0.0  # else A has at most n_eval non-zero singular values
        self.hi = sx[0]
        self.column_norms = np.linalg.norm(x, axis=0)
        self.factor = np.linalg.qr(x, mode="r") if n_eval >= d else x

    def __call__(self, u, v) -> np.ndarray:
        u = np.atleast_2d(np.asarray(_numpy(u), dtype=np.float64))
        v = np.atleast_2d(np.asarray(_numpy(v), dtype=np.float64))
        w = np.sqrt(u * u + v * v)
        tol, lo, hi = self.tol, self.lo, self.hi
        order = np.argsort(-w, axis=1)
        w_sorted = np.take_along_axis(w, order, axis=1)
        col_mass = (self.column_norms[order] * w_sorted) ** 2  # ||A e_j||^2 in sorted order
        tail = np.sqrt(np.cumsum(col_mass[:, ::-1], axis=1)[:, ::-1])  # ||A[:, k:]||_F
        s_max_lo = np.maximum(np.sqrt(col_mass.max(1)), lo * w_sorted[:, 0])[:, None]
        s_max_hi = np.minimum(hi * w_sorted[:, 0], tail[:, 0])[:, None]
        n_in = (lo * w_sorted > tol * s_max_hi).sum(1)
        n_maybe = (np.minimum(hi * w_sorted, tail) > tol * s_max_lo).sum(1)
        ranks = n_in.astype(np.int64)
        valid = np.isfinite(w_sorted[:, 0]) & (w_sorted[:, 0] > 0)
        ranks[~valid] = 0
        exact = np.flatnonzero(valid & (n_in != n_maybe))
        if exact.size:
            width = int(n_maybe[exact].max())
            cols = order[exact, :width]
            scale = np.take_along_axis(w[exact], cols, axis=1)
            scale[np.arange(width)[None, :] >= n_maybe[exact][:, None]] = 0  # pad: zero columns
            a = self.factor[:, cols].transpose(1, 0, 2) * scale[:, None, :]
            ranks[exact] = rank_from_singular_values(np.linalg.svd(a, compute_uv=False), tol)
        return ranks


def _tensor(a, dtype=None) -> torch.Tensor:
    import torch

    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(a))
    return t.to(dtype or (t.dtype if t.is_floating_point() else torch.float64))


def _row_norms(a):
    """l2 norms along the last axis, kept as a length-1 axis (numpy array or torch tensor)."""
    return a.norm(dim=-1, keepdim=True) if _is_tensor(a) else np.linalg.norm(a, axis=-1, keepdims=True)


def _correlation(neurons):
    """Pearson correlation between the rows (neurons) of each matrix (B, m, n), across the examples.
    A neuron constant over the examples (a dead one included) gets NaNs, which compare False."""
    centered = neurons - neurons.mean(axis=2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):  # numpy input: 0/0 for a constant neuron, as torch gives
        unit = centered / _row_norms(centered)
    return unit @ unit.swapaxes(1, 2)


def deduplicated_neurons(neurons, corr_threshold: float):
    """Mask (B, m) of the neurons kept by the greedy correlation scan; neurons (B, m, n): a neuron's values over
    the examples as a row (features transposed, so that the reductions over examples run along memory).
    numpy arrays or torch tensors (then computed on their device).

    Neurons that are zero on every example are dropped.  Scanning the rest in index order, a neuron is
    removed when |corr| with any neuron still kept, other than itself, exceeds the threshold.  Every
    neuron after the current one is still kept when it is scanned, and a kept earlier neuron had no
    such partner after it (so not the current one), hence neuron i is removed exactly when some later
    live neuron j > i has |corr_ij| > threshold: the whole scan is one upper-triangular test (only the
    upper triangle of the correlation is read).  A dead neuron's correlations are NaN (it is constant),
    so it never removes another.
    """
    live = (neurons != 0).any(axis=2)
    close = abs(_correlation(neurons)) > corr_threshold
    duplicate = (close.triu(1) if _is_tensor(close) else np.triu(close, 1)).any(axis=2)
    return live & ~duplicate


def feature_sparsity(phi, corr_threshold: float = 0.99, normalize_rows: bool = True):
    """Feature sparsity of post-ReLU features phi (examples x neurons): lower is sparser, in [0, 1].

    normalize_rows=True (toy nets): each example's feature vector is first scaled to unit l2 norm
    (all-zero rows stay zero).  Near-duplicate neurons are removed (`deduplicated_neurons`), then the
    value is (non-zero entries over the surviving neurons) / (examples x all neurons); NaN for features
    that are not all finite (a diverged net).  normalize_rows=False is the deep-net variant (no
    per-example scaling; the caller subsamples neurons).  Accepts torch tensors (computed on the tensor's
    device, in its floating dtype, integers in float64) or numpy arrays (computed by numpy in float64:
    the toy nets need no torch).  Batched: phi (..., n, m) gives an array of the leading shape (all runs
    of an experiment in one pass); a single matrix gives a float.
    """
    tensor = _is_tensor(phi)
    phi = _tensor(phi) if tensor else np.asarray(phi, dtype=np.float64)
    lead, (n, m) = phi.shape[:-2], phi.shape[-2:]
    if n * m == 0:
        return np.zeros(lead) if lead else 0.0
    phi = phi.reshape(-1, n, m)
    where = sys.modules["torch"].where if tensor else np.where
    finite = (phi.isfinite() if tensor else np.isfinite(phi)).reshape(len(phi), -1).all(axis=1)
    if normalize_rows:
        norms = _row_norms(phi)
        with np.errstate(invalid="ignore", divide="ignore"):  # the rows of zero norm are not kept
            phi = where(norms > 0, phi / norms, 0)
    neurons = phi.swapaxes(1, 2)
    neurons = neurons.contiguous() if tensor else np.ascontiguousarray(neurons)
    kept = deduplicated_neurons(neurons, corr_threshold)
    non_zero = where(finite, ((neurons != 0).sum(axis=2) * kept).sum(axis=1), -1)
    non_zero = non_zero.cpu().numpy() if tensor else non_zero
    value = np.where(non_zero >= 0, non_zero / (n * m), np.nan).reshape(lead)  # -1: not finite
    return value if lead else float(value)


def effective_rank(features, eps: float = 0.0):
    """Entropy effective rank of row-normalized features: -sum p log p with p = s / sum(s), zeros dropped.

    Batched: features (..., n, k) gives an array of the leading shape (one SVD call for all); a single
    matrix gives a float."""
    f = np.asarray(_numpy(features), dtype=np.float64)
    norms = np.linalg.norm(f, axis=-1, keepdims=True)
    f = np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)
    singular = np.linalg.svd(f, compute_uv=False)
    values = np.zeros(singular.shape[:-1])
    for index in np.ndindex(values.shape):
        s = singular[index]
        s = s[s > eps]
        if s.size:
            p = s / s.sum()
            values[index] = -(p * np.log(p)).sum()
    return values if values.ndim else float(values)


def per_example_gradients(model, x_eval, params=None, batched: bool = False) -> torch.Tensor:
    """phi: row i is the gradient of the scalar output at x_eval[i] w.r.t. all parameters (biases included).

    model: a torch.nn.Module with one scalar output per example (its parameters are used unless `params`
    is given), or a function f(params_dict, x) -> scalar for one example x.  batched=True: every tensor
    of `params` has a leading run axis R and the result is (R, n, P) instead of (n, P).
    Per-example gradients come from torch.func (vmap of grad), no Python loop over examples or runs.
    """
    import torch
    from torch.func import functional_call, grad, vmap

    if isinstance(model, torch.nn.Module):
        if params is None:
            params = {k: v.detach() for k, v in model.named_parameters()}
        module = model

        def model(p, x):
            return functional_call(module, p, (x.unsqueeze(0),)).reshape(())
    x_eval = _tensor(x_eval)
    per_example = vmap(grad(model), in_dims=(None, 0))
    if batched:
        per_example = vmap(per_example, in_dims=(0, None))
    grads = per_example(params, x_eval.to(next(iter(params.values())).dtype))
    lead = 2 if batched else 1
    return torch.cat([g.reshape(*g.shape[:lead], -1) for g in grads.values()], dim=-1)


def jacobian_rank(model, x_eval, tol: float = 1e-4, params=None, batched: bool = False):
    """Rank of the Jacobian phi (`per_example_gradients`): the number of s_k / s_max > tol.

    Computed as `rank_from_jacobian` computes it.  Returns an int, or an (R,) array when batched.
    """
    ranks = rank_from_jacobian(per_example_gradients(model, x_eval, params, batched), tol)
    return ranks if batched else int(ranks)


def rank_from_jacobian(phi, tol: float = 1e-4) -> np.ndarray:
    """Rank of phi (..., n, P), batched over the leading axes: the number of s_k / s_max > tol.

    Computed from float64 eigenvalues of the smaller Gram matrix (phi phi^T or phi^T phi, threshold
    squared, `rank_from_gram`), or for tol < GRAM_TOL_MIN from singular values of phi.  Rows and columns
    that are zero throughout (dead neurons' parameters) only add zero singular values, so they are dropped
    first: each matrix of the batch keeps its live columns, then rows, moved to the front and cut at the
    batch's widest (the rest stays zero padding).  The eigen-decomposition, cubic in the Gram's size, then
    runs on what is alive.
    """
    phi = np.asarray(_numpy(phi), dtype=np.float64)
    lead = phi.shape[:-2]
    phi = _live_first(_live_first(phi.reshape(-1, *phi.shape[-2:]), axis=2), axis=1)
    if tol < GRAM_TOL_MIN:  # the Gram's eigenvalues below ~1e-16 of the largest are rounding noise
        return rank_from_singular_values(np.linalg.svd(phi, compute_uv=False), tol).reshape(lead)
    phi_t = np.swapaxes(phi, -1, -2)
    gram = phi @ phi_t if phi.shape[-2] <= phi.shape[-1] else phi_t @ phi
    return rank_from_gram(gram, tol).reshape(lead)


# Smallest tol at which ranks come from the Gram matrix: at 1e-8, eigenvalues of the Gram at 1e-16 of the largest
# decide, which is rounding noise (on 180 random nets of the tests' kind numpy's eigensolver then miscounted 58 and
# torch's 10; at 1e-7 and above both matched the SVD on all of them).  Below it, an SVD of phi itself.
GRAM_TOL_MIN = 1e-7


def _live_first(phi: np.ndarray, axis: int) -> np.ndarray:
    """phi (B, n, P) with, in each matrix, the lines along `axis` (1: rows, 2: columns) that hold a non-zero
    moved to the front, in order, cut at the largest such count over the batch (at least 1).  Left as it is
    when that would cut less than a tenth: the gather would cost more than the smaller eigenproblem saves."""
    live = (phi != 0).any(axis=3 - axis)
    keep = max(int(live.sum(1).max(initial=0)), 1)
    if keep > 0.9 * phi.shape[axis]:
        return phi
    order = np.argsort(~live, axis=1, kind="stable")[:, :keep]
    return np.take_along_axis(phi, order[:, None, :] if axis == 2 else order[:, :, None], axis=axis)
