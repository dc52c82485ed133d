import numpy as np
import pytest
import torch

import oracles
from largestep import metrics


def test_l0_norm_equals_a_plain_count():
    rng = np.random.default_rng(0)
    beta = rng.normal(size=(7, 50)) * 10.0 ** rng.integers(-80, 2, size=(7, 50))
    want = [sum(1 for b in row if abs(b) > 1e-50) for row in beta]
    np.testing.assert_array_equal(metrics.l0_norm(beta), want)
    np.testing.assert_array_equal(metrics.l0_norm(torch.tensor(beta)), want)


@pytest.mark.parametrize("tol", [1e-6, 1e-15])
def test_diag_net_rank_equals_full_svd_of_the_autograd_jacobian(tol):
    rng = np.random.default_rng(1)
    d = 12
    x = rng.normal(size=(2 * d, d))
    rank = metrics.DiagNetJacobianRank(x, tol)
    exps = np.log10(tol)
    u_all, v_all = [], []
    for trial in range(40):
        # magnitudes spread over many decades, keeping clear (>= 1.5 decades) of the threshold itself,
        # where a float64 SVD cannot decide; some near it exercise the exact path, others the bounds
        mags = rng.uniform(exps - 12, 1, size=d)
        mags = np.where(np.abs(mags - exps) < 1.5, mags + 3, mags)
        u_all.append(rng.normal(size=d) * 10 ** mags)
        v_all.append(rng.normal(size=d) * 10 ** mags)
    got = rank(np.array(u_all), np.array(v_all))
    want = [oracles.diag_net_jacobian_rank(x, u, v, tol) for u, v in zip(u_all, v_all)]
    np.testing.assert_array_equal(got, want)
    assert len(set(want)) > 3


def test_diag_net_rank_takes_the_exact_path_where_bounds_straddle(monkeypatch):
    rng = np.random.default_rng(2)
    d = 10
    x = rng.normal(size=(2 * d, d))
    u = np.ones((1, d))
    u[0, -3:] = [3e-5, 2e-6, 1e-9]  # the first two sit inside the bounds' uncertainty around tol = 1e-5
    v = np.zeros((1, d))
    calls = []
    rank = metrics.DiagNetJacobianRank(x, 1e-5)  # its set-up takes an SVD of x: count only the calls after
    original = np.linalg.svd
    monkeypatch.setattr(np.linalg, "svd", lambda a, *args, **kw: calls.append(a.shape) or original(a, *args, **kw))
    got = rank(u, v)
    assert calls, "expected an exact SVD for a straddling row"
    assert got[0] == oracles.diag_net_jacobian_rank(x, u[0], v[0], 1e-5)


def test_diag_net_rank_of_zero_and_nonfinite_rows_is_zero():
    x = np.random.default_rng(3).normal(size=(8, 4))
    u = np.array([[0.0] * 4, [np.nan] * 4, [1.0, 1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(metrics.DiagNetJacobianRank(x)(u, np.zeros_like(u)), [0, 0, 2])


def _features(rng, n, m):
    phi = np.maximum(rng.normal(size=(n, m)), 0)
    phi[:, rng.integers(m)] = 0  # a dead neuron
    phi[rng.integers(n)] = 0  # an all-zero example
    a, b, c = rng.choice(m, 3, replace=False)
    phi[:, b] = 2.5 * phi[:, a]  # an exact duplicate up to scale (corr = 1: a tie)
    phi[:, c] = phi[:, a] + 1e-4 * rng.random(n) * (phi[:, a] > 0)  # a near-duplicate
    if m > 6:
        d = rng.choice([j for j in range(m) if j not in (a, b, c)])
        phi[:, d] = np.where(phi[:, d] > 0, 1.0, 0.0)  # a binary neuron
    return phi


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("normalize_rows", [True, False])
@pytest.mark.parametrize("threshold", [0.99, 0.999, 0.5])
def test_feature_sparsity_equals_the_plain_loop_reference(seed, normalize_rows, threshold):
    rng = np.random.default_rng(seed)
    phi = _features(rng, n=int(rng.integers(5, 30)), m=int(rng.integers(4, 25)))
    want = oracles.feature_sparsity(phi, threshold, normalize_rows)
    assert metrics.feature_sparsity(phi, threshold, normalize_rows) == pytest.approx(want, abs=1e-12)
    assert metrics.feature_sparsity(torch.tensor(phi), threshold, normalize_rows) == pytest.approx(want, abs=1e-12)


def test_feature_sparsity_edge_cases():
    assert metrics.feature_sparsity(np.zeros((4, 3))) == 0.0
    assert np.isnan(metrics.feature_sparsity(np.array([[1.0, np.nan], [0.0, 2.0]])))  # a diverged net's features
    assert metrics.feature_sparsity(np.ones((4, 3))) == 1.0  # constant neurons: undefined corr, all kept
    identical = np.tile(np.array([[1.0], [0.0], [2.0]]), (1, 5))
    assert metrics.feature_sparsity(identical, normalize_rows=False) == pytest.approx(2 / 15)  # one neuron left


def test_effective_rank_from_gram_eigenvalues():
    """Independent path: singular values as square roots of the Gram matrix's eigenvalues, rows normalized in a loop."""
    rng = np.random.default_rng(6)
    f = rng.normal(size=(40, 5)) * np.array([3.0, 1.0, 0.5, 0.2, 0.05])
    rows = np.array([row / np.sqrt(sum(v * v for v in row)) for row in f])
    s = np.sqrt(np.clip(np.linalg.eigvalsh(rows.T @ rows), 0, None))
    p = s / s.sum()
    assert metrics.effective_rank(f) == pytest.approx(-sum(pi * np.log(pi) for pi in p), rel=1e-10)


def test_effective_rank_equals_the_entropy_formula():
    rng = np.random.default_rng(4)
    f = rng.normal(size=(30, 6)) @ np.diag([5, 2, 1, 0.1, 0, 0])
    assert metrics.effective_rank(f, eps=1e-12) == pytest.approx(oracles.effective_rank(f, eps=1e-12))
    assert metrics.effective_rank(np.eye(4)) == pytest.approx(np.log(4))


def test_rank_from_gram_squares_the_threshold():
    rng = np.random.default_rng(5)
    phi = rng.normal(size=(20, 6)) @ np.diag([1, 1, 1e-2, 1e-3, 1e-5, 1e-7])
    for tol in (1e-1, 1e-2 / 2, 1e-4, 1e-6 * 5):
        assert metrics.rank_from_gram(phi.T @ phi, tol) == oracles.svd_rank(phi, tol)
