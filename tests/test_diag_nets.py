import numba
import numpy as np
import pytest
import torch

from largestep import diag_nets, kernels
from largestep.data import sparse_regression
from largestep.schedules import Schedule
from largestep.seeds import evaluation_grid


@pytest.fixture(scope="module")
def data():
    return sparse_regression(n=12, d=9, r=3, n_test=30, seed=0)


def _autograd_step(x, y, u, v, eta, batch):
    """One step of plain gradient descent on the loss of the examples `batch`, by autograd."""
    u = torch.tensor(u, requires_grad=True)
    v = torch.tensor(v, requires_grad=True)
    xb, yb = torch.tensor(x[batch]), torch.tensor(y[batch])
    loss = 0.5 * ((xb @ (u * v) - yb) ** 2).mean()
    loss.backward()
    return (u - eta * u.grad).detach().numpy(), (v - eta * v.grad).detach().numpy()


def _random_params(rng, rows, d):
    return rng.normal(size=(rows, d)), rng.normal(size=(rows, d))


def test_sgd_step_equals_autograd(data):
    rng = np.random.default_rng(1)
    u, v = _random_params(rng, 3, data.x_train.shape[1])
    idx = np.array([[4], [0], [11]])  # one step, one example per row
    etas = np.array([[0.1], [0.05], [0.3]])
    got_u, got_v = u.copy(), v.copy()
    kernels.diag_sgd_steps(got_u, got_v, data.x_train, data.y_train, idx, etas)
    for row in range(3):
        want_u, want_v = _autograd_step(data.x_train, data.y_train, u[row], v[row], etas[row, 0], [idx[row, 0]])
        np.testing.assert_allclose(got_u[row], want_u, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(got_v[row], want_v, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("n,d", [(12, 9), (7, 10)])  # the matrix-vector loops go four rows at a time: both remainders
def test_gd_steps_equal_autograd(n, d):
    data = sparse_regression(n=n, d=d, r=3, n_test=30, seed=0)
    x, y = data.x_train, data.y_train
    rng = np.random.default_rng(2)
    u, v = _random_params(rng, 2, d)
    u *= 0.3
    etas = np.array([[0.2, 0.1, 0.3], [0.05, 0.2, 0.1]])  # (rows, steps)
    got_u, got_v = u.copy(), v.copy()
    kernels.diag_gd_steps(got_u, got_v, x, np.ascontiguousarray(x.T / n), y, etas)
    for row in range(2):
        want_u, want_v = u[row], v[row]
        for eta in etas[row]:
            want_u, want_v = _autograd_step(x, y, want_u, want_v, eta, np.arange(n))
        np.testing.assert_allclose(got_u[row], want_u, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got_v[row], want_v, rtol=1e-12, atol=1e-14)


def _train(data, schedules, algorithm, seeds, iterations=300):
    """Curves on a grid, final u and final v of runs that all use `algorithm`."""
    steps = np.stack([s.values(iterations) for s in schedules])
    grid = evaluation_grid(iterations, 20, 15)

    def evaluate(algorithm, u, v):
        return {"train_loss": diag_nets.loss(data.x_train, data.y_train, u * v), "u": u.copy(), "v": v.copy()}

    batch = diag_nets.train_runs(data.x_train, data.y_train, steps, [algorithm] * len(seeds), seeds, grid, evaluate)
    return batch.curves, batch.curves["u"][:, -1], batch.curves["v"][:, -1]


@pytest.mark.parametrize("algorithm", ["sgd", "gd"])
def test_batched_runs_equal_runs_one_by_one(data, algorithm):
    schedules = [Schedule(0.05), Schedule(0.1, ((0.3, 2.0),)), Schedule(0.08, ((0.5, 4.0),))]
    seeds = [3, 7, 3]
    batched, u, v = _train(data, schedules, algorithm, seeds)
    for row, (schedule, seed) in enumerate(zip(schedules, seeds)):
        alone, u1, v1 = _train(data, [schedule], algorithm, [seed])
        np.testing.assert_allclose(batched["u"][row], alone["u"][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(batched["train_loss"][row], alone["train_loss"][0], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(u[row], u1[0], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("algorithm,lr", [("gd", 3.53), ("sgd", 0.28)])
def test_batching_is_bit_exact_at_the_edge_of_stability(algorithm, lr):
    """At the paper's large steps rounding grows to O(1): a run must not depend on its batch mates at all."""
    data = sparse_regression(n=40, d=100, r=20, n_test=200, seed=0)
    iterations = 3000
    schedules = [Schedule(lr), Schedule(lr, ((0.3, 3.4),)), Schedule(2.0 if algorithm == "gd" else 0.25)]
    steps = np.stack([s.values(iterations) for s in schedules])
    grid = evaluation_grid(iterations, 5, 10)
    def final_u(seeds, rows):
        u, v = diag_nets.init(len(rows), data.x_train.shape[1])
        seen = []
        diag_nets.train(u, v, data.x_train, data.y_train, steps[rows], algorithm, seeds, grid,
                        lambda k: seen.append(k))
        assert seen == grid.tolist()
        return u

    batched = final_u([0, 0, 1], [0, 1, 2])
    for row, seed in enumerate([0, 0, 1]):
        np.testing.assert_array_equal(batched[row], final_u([seed], [row])[0])


def test_gd_and_sgd_rows_in_one_call_equal_separate_calls(data):
    """train_runs splits rows by algorithm and puts each row's curves back in its place."""
    schedules = [Schedule(0.05), Schedule(0.1), Schedule(0.08), Schedule(0.05)]
    steps = np.stack([s.values(200) for s in schedules])
    grid = evaluation_grid(200, 10, 10)
    evaluate = lambda algorithm, u, v: {"train_loss": diag_nets.loss(data.x_train, data.y_train, u * v),  # noqa: E731
                                        "u": u.copy()}
    mixed = diag_nets.train_runs(data.x_train, data.y_train, steps, ["sgd", "gd", "sgd", "gd"], [4, 0, 5, 0],
                                 grid, evaluate)
    for row, (algorithm, seed) in enumerate(zip(["sgd", "gd", "sgd", "gd"], [4, 0, 5, 0])):
        alone = diag_nets.train_runs(data.x_train, data.y_train, steps[row:row + 1], [algorithm], [seed], grid,
                                     evaluate)
        np.testing.assert_array_equal(mixed.curves["u"][row], alone.curves["u"][0])
        # the loss is one matrix product over all rows: its rounding may depend on the batch
        np.testing.assert_allclose(mixed.curves["train_loss"][row], alone.curves["train_loss"][0], rtol=1e-13)
    assert not np.allclose(mixed.curves["u"][0], mixed.curves["u"][3])  # the SGD row is not the GD row
    with pytest.raises(ValueError, match="'gd' or 'sgd'"):
        diag_nets.train_runs(data.x_train, data.y_train, steps[:1], ["adam"], [0], grid, evaluate)


def test_a_diverged_row_is_flagged_and_its_metrics_are_nan_from_then_on(data):
    steps = np.stack([Schedule(0.05).values(100), Schedule(50.0).values(100)])
    grid = evaluation_grid(100, 10, 10)
    evaluate = lambda algorithm, u, v: {"train_loss": diag_nets.loss(data.x_train, data.y_train, u * v),  # noqa: E731
                                        "norm": np.linalg.norm(u, axis=1)}
    batch = diag_nets.train_runs(data.x_train, data.y_train, steps, ["sgd", "sgd"], [0, 0], grid, evaluate)
    assert batch.diverged.tolist() == [False, True]
    assert np.isfinite(batch.curves["train_loss"][0]).all() and np.isfinite(batch.curves["norm"][0]).all()
    gone = np.isnan(batch.curves["train_loss"][1])
    assert gone[-1] and not gone[0]
    np.testing.assert_array_equal(np.isnan(batch.curves["norm"][1]), gone)


def test_sgd_follows_its_sampling_stream_step_by_step(data):
    """Independent check of the loop: replay the same indices with the autograd step."""
    iterations = 40
    schedule = Schedule(0.1, ((0.5, 2.0),))
    curves, u, v = _train(data, [schedule], "sgd", [5], iterations)
    ref_u = np.full(data.x_train.shape[1], 0.1)
    ref_v = np.zeros(data.x_train.shape[1])
    for i, (k, eta) in enumerate(zip(diag_nets.sgd_indices(5, len(data.x_train), iterations), schedule.values(iterations))):
        ref_u, ref_v = _autograd_step(data.x_train, data.y_train, ref_u, ref_v, eta, [k])
    np.testing.assert_allclose(u[0], ref_u, rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(v[0], ref_v, rtol=1e-11, atol=1e-14)


def test_same_seed_same_result_other_seed_other_result(data):
    a, _, _ = _train(data, [Schedule(0.1)], "sgd", [1])
    b, _, _ = _train(data, [Schedule(0.1)], "sgd", [1])
    c, _, _ = _train(data, [Schedule(0.1)], "sgd", [2])
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])
    assert not np.array_equal(a["train_loss"], c["train_loss"])


def test_a_diverging_row_does_not_disturb_the_others(data):
    good, bad = Schedule(0.05), Schedule(50.0)
    both, _, _ = _train(data, [good, bad], "sgd", [0, 0])
    alone, _, _ = _train(data, [good], "sgd", [0])
    assert not np.isfinite(both["train_loss"][1, -1])
    np.testing.assert_allclose(both["train_loss"][0], alone["train_loss"][0], rtol=1e-12)


def test_sparse_regression_has_the_specified_structure():
    data = sparse_regression(n=80, d=200, r=20, n_test=1000, seed=0)
    beta = data.extras["beta_star"]
    assert data.x_train.shape == (80, 200) and data.x_test.shape == (1000, 200)
    assert np.count_nonzero(beta) == 20 and np.all(beta[:20] > 0) and np.all(beta[20:] == 0)
    assert np.linalg.norm(beta) == pytest.approx(1.0)
    np.testing.assert_allclose(data.y_train, data.x_train @ beta)
    again = sparse_regression(n=80, d=200, r=20, n_test=1000, seed=0)
    np.testing.assert_array_equal(again.x_train, data.x_train)
    # the paper's stream: legacy RandomState(0), X first, then X_test, then beta*
    rs = np.random.RandomState(0)
    np.testing.assert_array_equal(rs.multivariate_normal(np.zeros(200), np.eye(200), 80), data.x_train)


def test_kernels_compile_without_a_writable_cache():
    """Where numba finds nowhere to write its cache (here: a function with no source file, as for a read-only
    install without a writable home), the loops are compiled in the process, with a warning, not a crash."""
    namespace = {}
    exec(compile("def double(a):\n    for i in range(a.shape[0]):\n        a[i] *= 2.0\n", "<no file>", "exec"),
         namespace)
    with pytest.raises(RuntimeError, match="no locator"):  # what plain njit(cache=True) does there
        numba.njit(cache=True)(namespace["double"])
    with pytest.warns(RuntimeWarning, match="NUMBA_CACHE_DIR"):
        double = kernels._compiled()(namespace["double"])
    a = np.arange(3.0)
    double(a)
    np.testing.assert_array_equal(a, [0.0, 2.0, 4.0])


def test_an_sgd_row_that_overflows_stops_and_is_still_flagged(data):
    """The SGD loop leaves a row once its prediction is not finite; its loss stays infinite (flagged diverged),
    and the other rows end as they do alone."""
    steps = np.stack([Schedule(0.05).values(300), Schedule(1e3).values(300)])
    grid = evaluation_grid(300, 5, 5)
    evaluate = lambda algorithm, u, v: {"train_loss": diag_nets.loss(data.x_train, data.y_train, u * v),  # noqa: E731
                                        "u": u.copy()}
    batch = diag_nets.train_runs(data.x_train, data.y_train, steps, ["sgd", "sgd"], [0, 0], grid, evaluate)
    alone = diag_nets.train_runs(data.x_train, data.y_train, steps[:1], ["sgd"], [0], grid, evaluate)
    assert batch.diverged.tolist() == [False, True]
    np.testing.assert_array_equal(batch.curves["u"][0], alone.curves["u"][0])
    u = np.full((1, data.x_train.shape[1]), 1e200)  # finite, but its prediction overflows
    v = u.copy()
    kernels.diag_sgd_steps(u, v, data.x_train, data.y_train, np.zeros((1, 5), np.int64), np.full((1, 5), 0.1))
    assert (u == 1e200).all() and not np.isfinite(diag_nets.loss(data.x_train, data.y_train, u * v)).any()
