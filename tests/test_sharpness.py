"""The sharpness (top Hessian eigenvalue by Lanczos on torch.func Hessian-vector products) against the
dense Hessian built by torch.autograd.functional.hessian, in float64, on small nets."""
import numpy as np
import pytest
import torch

from largestep import relu_nets
from largestep.sharpness import diag_net_sharpness, relu_net_sharpness


def dense_top_eigenvalue(loss, params: torch.Tensor) -> float:
    hessian = torch.autograd.functional.hessian(loss, params)
    return float(torch.linalg.eigvalsh(hessian)[-1])


@pytest.fixture
def regression():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((12, 8))
    return x, x[:, :2].sum(1) + 0.1 * rng.standard_normal(12)


@pytest.mark.parametrize("steps", [30, 10])  # 30 >= the 16 parameters: exact; 10: the Krylov estimate
def test_diag_net_sharpness_equals_the_dense_hessians_top_eigenvalue(regression, steps):
    x, y = regression
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    found = diag_net_sharpness(x, y, u, v, steps=steps)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for row in range(3):
        def loss(p):
            return 0.5 * ((xt @ (p[:8] * p[8:]) - yt) ** 2).mean()
        expected = dense_top_eigenvalue(loss, torch.tensor(np.concatenate([u[row], v[row]])))
        assert found[row] == pytest.approx(expected, rel=1e-9 if steps >= 16 else 1e-6)


def test_diag_net_sharpness_at_initialization_is_known_in_closed_form(regression):
    """At v = 0 the Hessian is [[0, diag(g)], [diag(g), diag(u) X^T X diag(u) / n]] with g = X^T(-y)/n; with
    u = c * 1 and a data set where g = 0 (y = 0) its top eigenvalue is c^2 * lambda_max(X^T X / n)."""
    x, _ = regression
    u, v = np.full((1, 8), 0.3), np.zeros((1, 8))
    expected = 0.09 * np.linalg.eigvalsh(x.T @ x / len(x))[-1]
    assert diag_net_sharpness(x, np.zeros(len(x)), u, v)[0] == pytest.approx(expected, rel=1e-10)


def test_relu_net_sharpness_equals_the_dense_hessians_top_eigenvalue():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((10, 2))
    y = np.maximum(x @ [1.0, -0.5], 0)
    nets = [relu_nets.two_layer_gaussian(rng, 2, 6, 1.0, 1.0) for _ in range(3)]
    layers = relu_nets.stack(nets)
    found = relu_net_sharpness(layers, x, y)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for row, net in enumerate(nets):
        def loss(p):
            w, a = p[:12].reshape(6, 2), p[12:]
            return ((torch.relu(xt @ w.T) @ a - yt) ** 2).mean()
        params = torch.tensor(np.concatenate([net[0][0][0].ravel(), net[1][0][0].ravel()]))
        assert found[row] == pytest.approx(dense_top_eigenvalue(loss, params), rel=1e-9)


def test_a_row_whose_products_overflow_gets_nan_and_the_others_their_values(regression):
    """Finite parameters on the way to divergence (here 1e120) overflow the Hessian-vector products; that row's
    sharpness is NaN and the other rows' equal their values computed alone (a batch once failed in LAPACK)."""
    x, y = regression
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal((3, 8)), rng.standard_normal((3, 8))
    u[1] *= 1e120
    v[1] *= 1e120
    found = diag_net_sharpness(x, y, u, v)
    assert np.isnan(found[1])
    for row in (0, 2):
        assert found[row] == pytest.approx(diag_net_sharpness(x, y, u[[row]], v[[row]])[0], rel=1e-9)


def test_sharpness_columns_are_dense_over_the_first_2_percent_then_log_spaced():
    from largestep.seeds import evaluation_grid
    from largestep.sharpness import sharpness_columns

    grid = evaluation_grid(14_126, 100, 150)
    columns = sharpness_columns(grid, 40, 14_126)
    early = grid[columns][grid[columns] <= 0.02 * 14_126]
    assert list(early) == [g for g in grid if g <= 0.02 * 14_126]  # every grid point of the transient
    later = grid[columns][grid[columns] > 0.02 * 14_126]
    assert later[-1] == 14_126 and len(later) <= 40
    gaps = np.diff(np.log(later))
    assert gaps.max() < 3 * np.median(gaps)  # roughly even on a log scale
    assert sharpness_columns(grid, 0, 14_126).size == 0


def test_sharpness_finals_against_a_plain_loop():
    from largestep.sharpness import sharpness_finals

    rng = np.random.default_rng(0)
    grid = np.array([0, 1, 2, 5, 50, 99, 100])
    steps = np.full((3, 100), 0.5)  # 2/eta = 4
    steps[2, 50:] = 0.25  # 2/eta = 8 after a decay
    sharpness = rng.uniform(1, 6, (3, len(grid)))
    sharpness[0, [1, 3]] = np.nan  # not measured there
    sharpness[1] = np.nan  # a row never measured
    got = sharpness_finals(sharpness, grid, steps, iterations=100, early=0.03)
    for r in range(3):
        limit = [2 / steps[r, min(g, 99)] for g in grid]
        early = [k for k, g in enumerate(grid) if g <= 3]
        later = [k for k, g in enumerate(grid) if g > 3]
        values = [v for v in sharpness[r] if v == v]
        if not values:
            assert all(np.isnan(got[name][r]) for name in got)
            continue
        assert got["sharpness_max"][r] == max(values)
        for name, ks in (("sharpness_above_2_over_eta_early", early), ("sharpness_above_2_over_eta_later", later)):
            assert got[name][r] == float(any(sharpness[r, k] > limit[k] for k in ks if sharpness[r, k] == sharpness[r, k]))


def test_the_sharpness_is_measured_on_survivors_trained_again_and_nothing_else_moves():
    """The dearest metric is measured in a second pass on the surviving seeds: every other curve of a survivor is
    what the first pass recorded, and the survivors' sharpness is what a first pass with it would have given."""
    import dataclasses

    from largestep.experiments import relu

    config = dataclasses.replace(relu.RELU_TWO_LAYER.config.quick(), sharpness_points=6)
    with_sharpness = relu.run(config, n_seeds=2)
    without = relu.run(dataclasses.replace(config, sharpness_points=0), n_seeds=2)
    for a, b in zip(with_sharpness["runs"], without["runs"]):
        assert a["seeds"] == b["seeds"] and a["diverged_seeds"] == b["diverged_seeds"]
        for metric, curves in b["curves"].items():
            np.testing.assert_array_equal(a["curves"][metric], curves)
        measured = np.isfinite(np.asarray(a["curves"]["sharpness"], float))
        assert measured.any(axis=1).all() and (measured.sum(1) >= 6).all()  # every survivor measured
        assert not np.isfinite(np.asarray(a["curves_diverged"]["sharpness"], float)).any()  # diverged ones not
