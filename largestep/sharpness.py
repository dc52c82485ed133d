"""Sharpness: the top eigenvalue of the full-batch training loss's Hessian, batched over runs.

Hessian-vector products come from torch.func (forward-over-reverse: the jvp of the gradient) of the sum of
the R runs' losses, whose Hessian is block-diagonal: one product serves every run, and the Hessian itself is
never formed.  The top eigenvalue is found by Lanczos with full
reorthogonalization: k products give the extreme eigenvalues of the Krylov space, exact once k reaches the
number of parameters, and power iteration would need many more products to separate the largest positive
eigenvalue from a large negative one.

The loss is the one whose per-example gradient SGD follows, averaged over the training set, so that
gradient descent on it is stable only while sharpness < 2/eta: 0.5 mean (<x, u*v> - y)^2 for the diagonal
nets, mean (h(x) - y)^2 for the ReLU nets.
"""
from __future__ import annotations

import numpy as np

from .threads import limited_threads

LANCZOS_STEPS = 20  # Krylov dimension (capped at the number of parameters, where Lanczos is exact)


def top_eigenvalue(hvp, start, steps: int = LANCZOS_STEPS) -> np.ndarray:
    """Largest eigenvalue of each of R symmetric operators: hvp(q (R, P)) -> (R, P), start (R, P) nonzero.

    Rows whose Krylov space closes early (an invariant subspace) stop there and keep their exact values.
    A row whose products overflow (finite parameters on the way to divergence) gets NaN; the others are
    unaffected (the operators are independent, so a row's products never mix with another's).
    """
    import torch

    q = start / start.norm(dim=1, keepdim=True)
    rows, dim = q.shape
    steps = min(steps, dim)
    basis = torch.zeros(rows, steps, dim, dtype=q.dtype)
    alpha = torch.zeros(rows, steps, dtype=q.dtype)
    beta = torch.zeros(rows, steps, dtype=q.dtype)
    length = torch.full((rows,), steps, dtype=torch.long)
    scale = torch.zeros(rows, dtype=q.dtype)
    for j in range(steps):
        basis[:, j] = q
        w = hvp(q)
        alpha[:, j] = (w * q).sum(1)
        scale = torch.maximum(scale, w.norm(dim=1))
        for _ in range(2):  # Gram-Schmidt twice: orthogonal to the working precision
            w = w - torch.einsum("rk,rkp->rp", torch.einsum("rkp,rp->rk", basis[:, : j + 1], w), basis[:, : j + 1])
        norm = w.norm(dim=1)
        beta[:, j] = norm
        closed = (norm <= 1e-10 * scale) & (length == steps)
        length[closed] = j + 1
        q = torch.where((length == steps)[:, None], w / norm.clamp_min(torch.finfo(q.dtype).tiny)[:, None],
                        torch.zeros_like(w))
    tops = np.full(rows, np.nan)
    a, b, lengths = alpha.numpy(), beta.numpy(), length.numpy()
    finite = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    for k in np.unique(lengths[finite]):
        chosen = np.flatnonzero((lengths == k) & finite)
        tridiagonal = np.zeros((chosen.size, k, k))
        diagonal = np.arange(k)
        tridiagonal[:, diagonal, diagonal] = a[chosen, :k]
        tridiagonal[:, diagonal[:-1], diagonal[1:]] = b[chosen, : k - 1]
        tridiagonal[:, diagonal[1:], diagonal[:-1]] = b[chosen, : k - 1]
        tops[chosen] = np.linalg.eigvalsh(tridiagonal)[:, -1]
    return tops


EARLY = 0.02  # the transient window: the first 2% of training


def sharpness_columns(grid, points: int, iterations: int, early: float = EARLY) -> np.ndarray:
    """Which of an evaluation grid's points (indices) also get the sharpness: every grid point in the first `early`
    fraction of training, where SGD with a large step can exceed 2/eta for a few updates right after
    initialization (a transient that evenly spread points miss), then `points` more, log-spaced in iteration
    over the rest, the last included.  Tens of Hessian-vector products per run and point make it the dearest
    metric: past the transient, a subset keeps it cheap."""
    grid = np.asarray(grid)
    if points <= 0 or not grid.size:
        return np.zeros(0, dtype=np.int64)
    cut = early * iterations
    dense = np.flatnonzero(grid <= cut)
    targets = np.geomspace(max(cut, 1.0), max(iterations, 1), points)
    later = np.minimum(np.searchsorted(grid, targets), len(grid) - 1)
    return np.unique(np.concatenate([dense, later, [len(grid) - 1]])).astype(np.int64)


def sharpness_finals(sharpness: np.ndarray, grid, steps: np.ndarray, iterations: int,
                     early: float = EARLY) -> dict[str, np.ndarray]:
    """Per row, from its sharpness curve (R, G; NaN where not measured) and its step sizes (R, T): its largest
    measured sharpness, and whether the sharpness exceeds 2/eta of the step taken there (1.0 or 0.0) within the
    first `early` fraction of training and after it.  Gradient descent on a quadratic is stable only below 2/eta."""
    grid = np.asarray(grid, dtype=np.int64)
    limit = 2.0 / steps[:, np.minimum(grid, iterations - 1)]
    above = np.where(np.isfinite(sharpness), sharpness > limit, False)
    window = grid <= early * iterations
    with np.errstate(invalid="ignore"):
        largest = np.where(np.isfinite(sharpness).any(1), np.nanmax(np.where(np.isfinite(sharpness), sharpness,
                                                                               -np.inf), axis=1), np.nan)
    def flag(columns):  # NaN where the row was not measured there (seeds past sharpness_seeds, or diverged)
        seen = np.isfinite(sharpness[:, columns]).any(1)
        return np.where(seen, above[:, columns].any(1).astype(float), np.nan)
    return {"sharpness_max": largest, "sharpness_above_2_over_eta_early": flag(window),
            "sharpness_above_2_over_eta_later": flag(~window)}


def _start(rows: int, dim: int, seed: int):
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.randn(rows, dim, generator=generator, dtype=torch.float64)


def batched_hvp(total_loss, params):
    """q -> H q for R runs at once, at params (R, P): total_loss(params) is the sum of the R runs' losses, each
    depending on its own row only, so its Hessian is block-diagonal and one Hessian-vector product of the sum
    gives every run's own (no vmap over runs: one traced product per call, whatever R)."""
    from torch.func import grad, jvp

    gradient = grad(total_loss)
    return lambda q: jvp(gradient, (params,), (q,))[1]


def diag_net_sharpness(x, y, u, v, steps: int = LANCZOS_STEPS, seed: int = 0) -> np.ndarray:
    """Sharpness of 0.5 mean (<x, u*v> - y)^2 at each row of u, v (R, d), parameters (u, v): (R,) float64."""
    import torch

    x = torch.as_tensor(np.asarray(x, np.float64))
    y = torch.as_tensor(np.asarray(y, np.float64))
    d = x.shape[1]
    params = torch.as_tensor(np.concatenate([u, v], axis=1), dtype=torch.float64)

    def total_loss(p):
        residual = (p[:, :d] * p[:, d:]) @ x.T - y
        return 0.5 * (residual * residual).mean(1).sum()

    with limited_threads():
        return top_eigenvalue(batched_hvp(total_loss, params), _start(*params.shape, seed), steps)


def relu_net_sharpness(layers: list, x, y, steps: int = LANCZOS_STEPS, seed: int = 0) -> np.ndarray:
    """Sharpness of mean (h(x) - y)^2 for R stacked ReLU nets (relu_nets' layers): (R,) float64."""
    import torch

    from .relu_nets import torch_params

    stacked = torch_params(layers)
    names = list(stacked)
    n_layers = len(layers)
    shapes = [stacked[k].shape[1:] for k in names]
    sizes = [int(np.prod(s)) for s in shapes]
    params = torch.cat([stacked[k].reshape(len(stacked[k]), -1) for k in names], dim=1).to(torch.float64)
    x = torch.as_tensor(np.asarray(x, np.float64))
    y = torch.as_tensor(np.asarray(y, np.float64))

    rows = len(params)

    def total_loss(p):
        pieces = torch.split(p, sizes, dim=1)
        net = {k: piece.reshape(rows, *shape) for k, piece, shape in zip(names, pieces, shapes)}
        h = x.expand(rows, *x.shape)  # (R, n, d)
        for l in range(n_layers):
            h = h @ net[f"layer{l}.weight"].transpose(1, 2)
            if f"layer{l}.bias" in net:
                h = h + net[f"layer{l}.bias"][:, None, :]
            if l < n_layers - 1:
                h = torch.relu(h)
        residual = h[..., 0] - y
        return (residual * residual).mean(1).sum()

    with limited_threads():
        return top_eigenvalue(batched_hvp(total_loss, params), _start(*params.shape, seed), steps)
