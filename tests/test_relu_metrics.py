"""Metrics used by the ReLU nets against plain reference implementations written from the definitions' words."""
import math

import numpy as np
import pytest
import torch

import oracles
from largestep import metrics, relu_nets


def random_features(rng):
    """Post-ReLU-like features with the awkward cases: dead neurons, all-zero rows, exact and scaled duplicates."""
    n, m = rng.integers(3, 14), rng.integers(2, 25)
    phi = np.maximum(rng.standard_normal((n, m)) + rng.uniform(-1, 1), 0)
    dead = rng.random(m) < 0.2
    phi[:, dead] = 0
    phi[rng.random(n) < 0.15] = 0
    for _ in range(rng.integers(0, 4)):  # ties: copies (possibly scaled) of earlier or later neurons
        src, dst = rng.integers(0, m, 2)
        phi[:, dst] = phi[:, src] * rng.choice([1.0, 2.5])
    if rng.random() < 0.3:  # near-copies: correlation just around the threshold
        src, dst = rng.integers(0, m, 2)
        phi[:, dst] = np.maximum(phi[:, src] + 0.05 * rng.standard_normal(n), 0)
    return phi


@pytest.mark.parametrize("normalize_rows", [True, False])
@pytest.mark.parametrize("threshold", [0.99, 0.999, 0.9])
def test_feature_sparsity_equals_plain_loop_reference(normalize_rows, threshold):
    rng = np.random.default_rng(int(threshold * 1000) + normalize_rows)
    for trial in range(80):
        phi = random_features(rng)
        expected = oracles.feature_sparsity(phi, threshold, normalize_rows)
        got = metrics.feature_sparsity(phi, threshold, normalize_rows)
        assert got == pytest.approx(expected, abs=1e-12), (trial, phi)
        assert metrics.feature_sparsity(torch.tensor(phi), threshold, normalize_rows) == pytest.approx(expected)
        assert 0.0 <= got <= 1.0


def test_feature_sparsity_scan_order_matters():
    # A ~ B and B ~ C but not A ~ C: scanning in index order removes A (B still kept), then B (C kept),
    # and keeps C; any other order would keep two neurons.
    rng = np.random.default_rng(0)
    a = rng.standard_normal(400)
    c = 0.7 * a + math.sqrt(1 - 0.49) * rng.standard_normal(400)
    b = (a + c) / 2
    phi = np.stack([a, b, c], axis=1) + 10  # all entries non-zero
    corr = np.corrcoef(phi.T)
    assert corr[0, 1] > 0.9 and corr[1, 2] > 0.9 and corr[0, 2] < 0.9
    assert metrics.feature_sparsity(phi, 0.9, normalize_rows=False) == pytest.approx(1 / 3)
    assert oracles.feature_sparsity(phi, 0.9, normalize_rows=False) == pytest.approx(1 / 3)
    assert metrics.feature_sparsity(phi[:, ::-1].copy(), 0.9, normalize_rows=False) == pytest.approx(1 / 3)
    assert metrics.feature_sparsity(phi[:, [1, 0, 2]], 0.9, normalize_rows=False) == pytest.approx(2 / 3)


def test_feature_sparsity_edge_cases():
    assert metrics.feature_sparsity(np.zeros((5, 4))) == 0.0
    one_hot = np.eye(4)
    assert metrics.feature_sparsity(one_hot) == pytest.approx(0.25)  # distinct neurons: all kept
    dup = np.ones((6, 3))  # constant neurons: no defined correlation, none removed
    assert metrics.feature_sparsity(dup) == pytest.approx(1.0)


def _module_and_loop_jacobian(seed, dead=0):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.ReLU(), torch.nn.Linear(6, 4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 1)).double()
    if dead:  # kill some first-layer neurons: rank-deficient Jacobian
        with torch.no_grad():
            net[0].weight[:dead] = 0
            net[0].bias[:dead] = -1
    x = torch.randn(40, 3, dtype=torch.float64)
    return net, x, oracles.module_jacobian(net, x)


def test_per_example_gradients_equal_autograd_loop():
    net, x, expected = _module_and_loop_jacobian(0)
    phi = metrics.per_example_gradients(net, x)
    torch.testing.assert_close(phi, expected, rtol=1e-12, atol=1e-12)


def test_batched_functional_gradients_equal_autograd_loop_per_run():
    layers = relu_nets.stack([relu_nets.multi_layer_gaussian(np.random.default_rng(s), 3, (5, 4), 0.8)
                              for s in range(3)])
    x = torch.randn(12, 3, dtype=torch.float64)
    phi = metrics.per_example_gradients(relu_nets.forward_one, x, relu_nets.torch_params(layers), batched=True)
    assert phi.shape == (3, 12, relu_nets.n_parameters(layers))
    for r in range(3):
        np.testing.assert_allclose(phi[r].numpy(), oracles.relu_net_jacobian(layers, r, x.numpy()), rtol=1e-12,
                                   atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda rng: relu_nets.multi_layer_gaussian(rng, 3, (5, 4), 0.8),  # biases on every layer
    lambda rng: relu_nets.two_layer_gaussian(rng, 3, 6, 1.0, 1.0),  # no biases
    lambda rng: relu_nets.two_layer_1d(rng, 7),  # d = 1, hidden biases only
])
def test_numpy_per_example_gradients_equal_autograd_per_run_and_point(make):
    layers = relu_nets.stack([make(np.random.default_rng(s)) for s in range(3)])
    d = layers[0][0].shape[2]
    x = np.random.default_rng(9).normal(size=(12, d))
    x[0] = 0  # a point where every bias-free hidden unit sits at its kink (derivative 0, as autograd)
    phi = relu_nets.per_example_gradients(layers, x)
    assert phi.shape == (3, 12, relu_nets.n_parameters(layers))
    for r in range(3):
        np.testing.assert_allclose(phi[r], oracles.relu_net_jacobian(layers, r, x), rtol=1e-12, atol=1e-12)


def test_rank_from_jacobian_ignores_dead_lines_batched():
    """Zero rows and columns, different in each matrix of the batch: the rank of each equals its full SVD's."""
    rng = np.random.default_rng(4)
    phi = rng.normal(size=(4, 30, 8)) @ rng.normal(size=(4, 8, 25))  # rank 8 each
    phi[0, :, :10] = 0
    phi[1, 5:20] = 0
    phi[2] = 0
    phi[3, :, 3] = rng.normal(size=30) * 1e-4  # a small live direction: counted at tol = 1e-6, not at 1e-4
    ranks = {}
    for tol in (1e-4, 1e-6):
        want = ranks[tol] = [oracles.svd_rank(p, tol) for p in phi]
        np.testing.assert_array_equal(metrics.rank_from_jacobian(phi, tol), want)
        np.testing.assert_array_equal(metrics.rank_from_jacobian(phi[1], tol), want[1])
    assert ranks[1e-4] == [8, 8, 0, 8] and ranks[1e-6][3] == 9


@pytest.mark.parametrize("dead", [0, 3])
@pytest.mark.parametrize("n_eval", [10, 40])
def test_jacobian_rank_equals_svd_reference(dead, n_eval):
    net, x, loop_phi = _module_and_loop_jacobian(1, dead)
    for tol in (1e-4, 1e-6):
        expected = oracles.svd_rank(loop_phi[:n_eval].numpy(), tol)
        assert metrics.jacobian_rank(net, x[:n_eval], tol) == expected
    if dead:
        assert expected < min(n_eval, loop_phi.shape[1])


def test_effective_rank_reference():
    f = np.random.default_rng(0).standard_normal((30, 6))
    f[3] = 0
    assert metrics.effective_rank(f) == pytest.approx(oracles.effective_rank(f))
    assert metrics.effective_rank(np.outer(np.ones(5), [1.0, 2.0])) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("dead", [0, 4])
def test_relu_experiments_jacobian_rank_equals_autograd_svd_per_run(dead):
    """The path relu.evaluate takes (numpy per-example gradients, batched rank) against autograd + full SVD."""
    layers = relu_nets.stack([relu_nets.multi_layer_gaussian(np.random.default_rng(s), 3, (6, 5), 0.8)
                              for s in range(3)])
    if dead:  # silence first-layer neurons of run 1: its Jacobian loses rank
        layers[0][0][1, :dead] = 0
        layers[0][1][1, :dead] = -1.0
    x = np.random.default_rng(7).normal(size=(relu_nets.n_parameters(layers), 3))
    for tol in (1e-4, 1e-8):
        got = metrics.rank_from_jacobian(relu_nets.per_example_gradients(layers, x), tol)
        want = [oracles.relu_net_jacobian_rank(layers, r, x, tol) for r in range(3)]
        np.testing.assert_array_equal(got, want)
    if dead:
        assert want[1] < want[0]


def _awkward_nets(make, rows: int, seed: int) -> list:
    """Stacked nets with the cases the Jacobian factor merges or drops: row 0 as drawn; row 1 with dead
    neurons, exact and positively scaled duplicates of a last-hidden-layer neuron (same activation mask),
    one output weight 0; row 2 with all output weights 0 (relu_two_layer's initialization); row 3 with
    every last-hidden-layer neuron dead."""
    layers = relu_nets.stack([make(np.random.default_rng(seed + s)) for s in range(rows)])
    w, b = layers[-2]
    out = layers[-1][0]
    w[1, :2] = 0
    if b is not None:
        b[1, :2] = -1.0
    w[1, 3], w[1, 4] = w[1, 2], 2.5 * w[1, 2]
    if b is not None:
        b[1, 3], b[1, 4] = b[1, 2], 2.5 * b[1, 2]
    out[1, 0, 5] = 0.0
    out[2] = 0.0
    w[3] = -np.abs(w[3])
    if b is not None:
        b[3] = -1.0
    return layers


@pytest.mark.parametrize("make", [
    lambda rng: relu_nets.two_layer_1d(rng, 9),  # d = 1, hidden biases, no output bias
    lambda rng: relu_nets.two_layer_gaussian(rng, 2, 8, 0.5, 1.0),  # no biases
    lambda rng: relu_nets.multi_layer_gaussian(rng, 3, (7, 8), 0.8),  # biases everywhere, output bias
])
def test_jacobian_factor_has_the_jacobians_singular_values(make):
    """F F^T = phi phi^T with phi from one autograd call per point: same singular values, same ranks.
    Rounding: a zero singular value of phi may come out of F at ~1e-10 of the largest (a Cholesky of a
    singular block), as it does from any Gram matrix (eigenvalue errors ~1e-16 of the largest, so singular
    values ~1e-8): ranks are compared at tolerances well above that."""
    layers = _awkward_nets(make, 4, 3)
    d = layers[0][0].shape[2]
    x = np.random.default_rng(5).uniform(0.05, 1.0, size=(30, d))  # positive inputs: row 3's neurons stay dead
    factor = relu_nets.jacobian_factor(layers, x)
    assert factor.shape[2] < relu_nets.n_parameters(layers)
    for r in range(4):
        phi = oracles.relu_net_jacobian(layers, r, x)
        want = np.linalg.svd(phi, compute_uv=False)
        got = np.linalg.svd(factor[r], compute_uv=False)
        size = min(len(want), len(got))
        np.testing.assert_allclose(got[:size], want[:size], rtol=0, atol=1e-8 * want[0])
        assert np.all(want[size:] <= 1e-8 * want[0]) and np.all(got[size:] <= 1e-8 * want[0])
        for tol in (1e-4, 1e-6):
            assert metrics.rank_from_jacobian(factor[r], tol) == oracles.svd_rank(phi, tol)
        if r == 3 and len(layers) == 2:  # no live neuron, no output bias: phi is zero
            assert metrics.rank_from_jacobian(factor[r], 1e-4) == 0 and not np.any(factor[r])


def test_jacobian_factor_rows_do_not_depend_on_the_batch():
    """A diverged (NaN) row leaves the others' factors as they are alone, up to zero padding."""
    layers = relu_nets.stack([relu_nets.two_layer_1d(np.random.default_rng(s), 6) for s in range(3)])
    layers[0][0][1] = np.nan
    x = np.linspace(-1, 1, 20)[:, None]
    together = relu_nets.jacobian_factor(layers, x)
    for r in (0, 2):
        alone = relu_nets.jacobian_factor([(w[r:r + 1], None if b is None else b[r:r + 1]) for w, b in layers], x)
        np.testing.assert_array_equal(together[r, :, :alone.shape[2]], alone[0])
        assert not np.any(together[r, :, alone.shape[2]:])


def test_merged_masks_fall_back_to_exact_comparison_when_keys_collide(monkeypatch):
    """Random keys that collide for every neuron (all zero): the verification sees it and the exact
    comparison gives the same factor."""
    layers = _awkward_nets(lambda rng: relu_nets.two_layer_1d(rng, 9), 4, 0)
    x = np.linspace(-1, 1, 25)[:, None]
    want = relu_nets.jacobian_factor(layers, x)
    monkeypatch.setattr(relu_nets, "_key_weights", lambda n: np.zeros(n))
    np.testing.assert_array_equal(relu_nets.jacobian_factor(layers, x), want)


def test_psd_cholesky_reconstructs_semidefinite_matrices():
    rng = np.random.default_rng(2)
    for k in (1, 2, 3, 6):
        a = rng.normal(size=(40, k, k))
        a[:10, :, k // 2:] = 0  # rank-deficient
        a[10:13] = 0  # zero matrices
        psd = a @ np.swapaxes(a, 1, 2)
        factor = relu_nets.psd_cholesky(psd)
        assert np.all(np.triu(factor, 1) == 0)
        np.testing.assert_allclose(factor @ np.swapaxes(factor, 1, 2), psd, rtol=0,
                                   atol=1e-12 * np.abs(psd).max())
        assert not np.any(factor[10:13])


@pytest.mark.parametrize("threshold", [0.99, 0.999])
def test_batched_feature_sparsity_equals_the_reference_per_matrix(threshold):
    """One call over a (2, 3, n, m) batch: each entry as the plain loop on its own matrix; a matrix with a
    NaN gives NaN without touching the others; an all-dead one gives 0."""
    rng = np.random.default_rng(11)
    n, m = 12, 15
    batch = np.stack([np.maximum(rng.standard_normal((n, m)) + rng.uniform(-1, 1), 0) for _ in range(6)])
    batch[1][:, rng.random(m) < 0.4] = 0  # dead neurons
    batch[2][:, 4] = batch[2][:, 9] * 2.0  # a duplicate
    batch[3][2, 5] = np.nan  # a diverged net
    batch[4] = 0  # every neuron dead
    got = metrics.feature_sparsity(batch.reshape(2, 3, n, m), threshold)
    assert got.shape == (2, 3)
    for i, phi in enumerate(batch):
        if i == 3:
            assert np.isnan(got.flat[i])
        else:
            assert got.flat[i] == pytest.approx(oracles.feature_sparsity(phi, threshold), abs=1e-12)
    assert got.flat[4] == 0.0


def test_batched_effective_rank_equals_the_reference_per_matrix():
    rng = np.random.default_rng(12)
    f = rng.standard_normal((3, 20, 6))
    f[1, :, 2:] = 0  # rank 2
    f[2] = 0  # nothing left: 0
    got = metrics.effective_rank(f)
    np.testing.assert_allclose(got, [oracles.effective_rank(x) for x in f], rtol=1e-12, atol=1e-12)
    assert got[2] == 0.0
