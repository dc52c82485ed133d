"""ReLU nets: the batched hand-written SGD against torch autograd, batched vs one by one, schedules, configs."""
import dataclasses
import math

import numpy as np
import pytest
import torch

from largestep import relu_nets
from largestep.config import apply_overrides, to_dict
from largestep.experiments import relu
from largestep.results import load_results, save_json
from largestep.config import ConfigError
from largestep.schedules import Schedule


def _nets(kind, seeds):
    rng_nets = []
    for s in seeds:
        rng = relu_nets.init_rng(s)
        if kind == "1d":
            rng_nets.append(relu_nets.two_layer_1d(rng, 7))
        elif kind == "two_layer":
            rng_nets.append(relu_nets.two_layer_gaussian(rng, 3, 6, 0.7, 0.5))
        else:
            rng_nets.append(relu_nets.multi_layer_gaussian(rng, 4, (5, 3), 0.9, biases=True))
    return relu_nets.stack(rng_nets)


def _torch_sgd_reference(layers, row, x, y, etas, indices):
    """Plain autograd SGD on (h(x_i) - y_i)^2, one net at a time, with nn.Linear-free explicit params."""
    params = []
    for w, b in layers:
        params.append((torch.tensor(w[row], requires_grad=True),
                       None if b is None else torch.tensor(b[row], requires_grad=True)))
    x, y = torch.tensor(x), torch.tensor(y)
    for eta, i in zip(etas, indices):
        h = x[i]
        for l, (w, b) in enumerate(params):
            h = w @ h + (0 if b is None else b)
            if l < len(params) - 1:
                h = torch.relu(h)
        loss = (h[0] - y[i]) ** 2
        grads = torch.autograd.grad(loss, [p for pair in params for p in pair if p is not None])
        with torch.no_grad():
            flat = [p for pair in params for p in pair if p is not None]
            for p, g in zip(flat, grads):
                p -= eta * g
    return [(w.detach().numpy(), None if b is None else b.detach().numpy()) for w, b in params]


@pytest.mark.parametrize("kind", ["1d", "two_layer", "multi_layer"])
def test_batched_sgd_matches_autograd_per_run(kind):
    seeds = [3, 4, 5]
    layers = _nets(kind, seeds)
    d = layers[0][0].shape[2]
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((9, d)), rng.standard_normal(9)
    iterations = 60
    steps = np.stack([np.linspace(0.01, 0.03, iterations), np.full(iterations, 0.02), np.full(iterations, 0.005)])
    start = relu_nets.copy_layers(layers)
    relu_nets.train(layers, x, y, steps, seeds, np.array([iterations]), lambda k: None)
    for row, seed in enumerate(seeds):
        indices = relu_nets.sgd_indices(seed, len(x), iterations)
        reference = _torch_sgd_reference(start, row, x, y, steps[row], indices)
        for (w, b), (w_ref, b_ref) in zip(layers, reference):
            np.testing.assert_allclose(w[row], w_ref, rtol=1e-10, atol=1e-12)
            if b is not None:
                np.testing.assert_allclose(b[row], b_ref, rtol=1e-10, atol=1e-12)


def test_batched_runs_equal_runs_one_by_one():
    seeds = [0, 1, 2, 3]
    layers = _nets("multi_layer", seeds)
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 4)), rng.standard_normal(20)
    steps = np.stack([Schedule(lr, ((0.5, 3.0),)).values(200) for lr in (0.01, 0.02, 0.03, 0.04)])
    singles = [[(w[[r]].copy(), None if b is None else b[[r]].copy()) for w, b in layers] for r in range(4)]
    seen = []
    relu_nets.train(layers, x, y, steps, seeds, np.array([0, 50, 200]), lambda k: seen.append(k))
    assert seen == [0, 50, 200]
    for r, single in enumerate(singles):
        relu_nets.train(single, x, y, steps[[r]], [seeds[r]], np.array([200]), lambda k: None)
        for (w, b), (w1, b1) in zip(layers, single):
            np.testing.assert_array_equal(w[r], w1[0])
            np.testing.assert_array_equal(b[r], b1[0])


def test_a_row_that_diverges_does_not_disturb_the_others_bit_for_bit():
    """A row whose prediction or parameters turn non-finite stops being trained (the compiled loop leaves it,
    seeds.advance_live skips it); the survivors' trajectories equal the same runs trained alone, bit for bit, and
    the dead row stays dead (its loss non-finite)."""
    seeds = [0, 1, 2]
    layers = _nets("multi_layer", seeds)
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((20, 4)), rng.standard_normal(20)
    steps = np.stack([np.full(300, 0.01), np.full(300, 1e6), np.full(300, 0.02)])  # row 1 blows up at once
    singles = {r: [(w[[r]].copy(), None if b is None else b[[r]].copy()) for w, b in layers] for r in (0, 2)}
    finite_at = []
    relu_nets.train(layers, x, y, steps, seeds, np.array([1, 20, 300]),
                    lambda k: finite_at.append(bool(np.isfinite(relu_nets.mse(layers, x, y)[1]))))
    assert finite_at == [True, False, False]  # dead within 20 steps, still dead at the end
    for r, single in singles.items():
        relu_nets.train(single, x, y, steps[[r]], [seeds[r]], np.array([300]), lambda k: None)
        for (w, b), (w1, b1) in zip(layers, single):
            np.testing.assert_array_equal(w[r], w1[0])
            np.testing.assert_array_equal(b[r], b1[0])


def test_predict_and_features_match_torch_forward():
    layers = _nets("multi_layer", [0, 1])
    x = np.random.default_rng(2).standard_normal((7, 4))
    out = relu_nets.predict(layers, x)
    params = relu_nets.torch_params(layers, rows=[1])
    expected = torch.func.vmap(relu_nets.forward_one, in_dims=(None, 0))(
        {k: v[0] for k, v in params.items()}, torch.tensor(x))
    np.testing.assert_allclose(out[1], expected.numpy(), rtol=1e-12)
    features = relu_nets.hidden_features(layers, x)
    assert [f.shape for f in features] == [(2, 7, 5), (2, 7, 3)]
    assert (features[0] >= 0).all()


def test_initializations_follow_the_spec():
    layers = relu_nets.two_layer_1d(np.random.default_rng(0), 1000)
    assert set(np.unique(layers[0][0])) == {-2.5, 2.5}
    assert layers[1][1] is None  # no output bias
    assert abs(layers[0][1].std() - 2.5) < 0.25 and abs(layers[1][0].std() - 4.0) < 0.4
    student = relu.make_student(relu.RELU_TWO_LAYER.config, 0)
    assert (student[1][0] == 0).all() and student[0][1] is None
    multi = relu.make_student(relu.RELU_MULTI_LAYER.config, 0)
    assert relu_nets.n_parameters(multi) == relu.RELU_MULTI_LAYER.config.n_parameters() == 181
    for (w, b), fan_in in zip(multi, (5, 10, 10)):
        assert np.abs(b).max() <= 1 / math.sqrt(fan_in)
    assert relu.RELU_1D.config.n_parameters() == 300


def _paper_loop_step_sizes(T, gamma, decays, warmup_until=0.0, warmup_factor_max=1.0, warmup_exponent=1.0):
    """The step size of each update as the paper's ReLU training loop sets it, written as that loop runs:
    before update i, warm up while i <= int(s*T), then divide when i reaches a decay's int(f*T)."""
    lr, out, thresholds = gamma, [], {int(f * T): k for f, k in decays}
    for i in range(T):
        if i <= int(warmup_until * T) and int(warmup_until * T) > 0:
            lr = gamma + (warmup_factor_max - 1) * gamma * (i / T) ** warmup_exponent
        if i in thresholds:
            lr /= thresholds[i]
        out.append(lr)
    return np.array(out)


def test_relu_schedules_equal_the_papers_loop():
    one_d = relu.RELU_1D.config
    T = one_d.iterations
    assert T == int(10 ** 4.5) + 1 == 31623
    for run, (s, k, gain) in zip(one_d.runs, [(0.02, 2.5, 8.0), (0.5, 3.0, 200.0)]):
        np.testing.assert_allclose(run.schedule.values(T), _paper_loop_step_sizes(T, 2e-4, [(s, k)], s, gain),
                                   rtol=1e-13)
    over = relu.RELU_1D_OVERREG.config.runs[1].schedule.values(T)
    np.testing.assert_allclose(over, _paper_loop_step_sizes(T, 2e-4, [(0.5, 3.0)], 0.5, 250.0), rtol=1e-13)
    multi = relu.RELU_MULTI_LAYER.config
    for run, (s, k) in zip(multi.runs[1:], [(0.1, 3.5), (0.3, 2.5), (0.5, 5.0)]):
        expected = _paper_loop_step_sizes(multi.iterations, 0.04, [(s, k)], s, 6.0, 0.5)
        np.testing.assert_allclose(run.schedule.values(multi.iterations), expected, rtol=1e-13)
    two = relu.RELU_TWO_LAYER.config
    assert two.iterations == int(10 ** 4.15) + 1
    for run, (f, k) in zip(two.runs[1:], [(0.1, 2.0), (0.3, 4.0), (0.5, 5.0)]):
        eta = run.schedule.values(two.iterations)
        np.testing.assert_array_equal(eta, _paper_loop_step_sizes(two.iterations, 0.455, [(f, k)]))
        assert eta[int(f * two.iterations) - 1] == 0.455 and eta[int(f * two.iterations)] == 0.455 / k


@pytest.mark.parametrize("override, message", [
    ("widths=[]", "widths must list at least one"),
    ("runs.0.schedule.lr=-0.1", "step size must be a finite number > 0"),
    ("widths=[10,0]", "hidden widths must be >= 1"),
    ("iterations=1", "2 decays but only 1 iterations"),
])
def test_bad_configs_give_clear_errors(override, message):
    cfg = relu.RELU_MULTI_LAYER.config
    if override.startswith("iterations"):
        cfg = dataclasses.replace(cfg, runs=(relu.ReluRun("two_decays", Schedule(0.1, ((0.1, 2.0), (0.5, 2.0)))),))
    with pytest.raises(ConfigError, match=message):
        apply_overrides(cfg, [override]).validate()


def test_warmup_after_decay_is_rejected():
    cfg = relu.RELU_MULTI_LAYER.config
    with pytest.raises(ConfigError, match="warmup .* must end before the first decay"):
        apply_overrides(cfg, ["runs.1.schedule.warmup.until=0.5"]).validate()


def _tiny(experiment, **changes):
    cfg = experiment.config
    return dataclasses.replace(cfg, iterations=300, grid_early=5, grid_spaced=10, **changes)


def test_divergence_is_reported_not_fatal(tmp_path):
    cfg = _tiny(relu.RELU_TWO_LAYER, runs=(relu.ReluRun("ok", Schedule(0.05)), relu.ReluRun("boom", Schedule(30.0))))
    results = {"family": "relu", "config": to_dict(cfg), "n_seeds": 2, **relu.run(cfg, n_seeds=2)}
    ok, boom = results["runs"]
    assert ok["seeds_diverged"] == 0 and ok["seeds"] == [0, 1]
    assert boom["diverged"] and boom["seeds_tried"] == 20 and boom["seeds_diverged"] == 20
    assert math.isnan(boom["final_median"]["train_loss"])
    results["experiment"] = "relu_two_layer"
    save_json(results, tmp_path / "r.json")
    loaded = load_results(tmp_path / "r.json")
    assert math.isnan(loaded["runs"][1]["final_median"]["train_loss"])
    figs = relu.figures(loaded)  # a run without survivors still draws, its sharpness too
    assert set(figs) == {"relu_two_layer", "relu_two_layer_neurons", "relu_two_layer_sharpness"}


@pytest.mark.parametrize("experiment", [relu.RELU_1D, relu.RELU_MULTI_LAYER])
def test_tiny_run_results_and_figures_from_json(experiment, tmp_path):
    results = {"family": "relu", "config": to_dict(_tiny(experiment)), "n_seeds": 1,
               **relu.run(_tiny(experiment), n_seeds=1)}
    results["experiment"] = experiment.name
    save_json(results, tmp_path / "r.json")
    loaded = load_results(tmp_path / "r.json")
    run = loaded["runs"][0]
    for metric, curves in results["runs"][0]["curves"].items():  # the file keeps every number exactly
        np.testing.assert_array_equal(np.asarray(run["curves"][metric], float), curves)
    assert run["final_median"] == results["runs"][0]["final_median"]
    assert len(run["curves"]["iteration"]) == len(run["curves"]["train_loss"][0])
    for key in run["final_median"]:
        assert math.isfinite(run["final_median"][key])
    sparsities = [k for k in run["final_median"] if k.startswith("feature_sparsity")]
    assert sparsities and all(0 <= run["final_median"][k] <= 1 for k in sparsities)
    figs = relu.figures(loaded)
    assert experiment.name in figs
    if experiment is relu.RELU_1D:
        snaps = np.asarray(loaded["runs"][0]["extras"]["snapshots"][0])
        assert snaps.shape == (6, len(loaded["snapshot_x"]))
        assert loaded["snapshot_iterations"][-1] == 300


def test_output_bias_only_when_asked():
    two = relu.RELU_TWO_LAYER.config
    assert relu.make_student(two, 0)[-1][1] is None
    with_bias = dataclasses.replace(two, output_bias=True)
    layers = relu.make_student(with_bias, 0)
    assert layers[-1][1].shape == (1, 1)
    assert relu_nets.n_parameters(layers) == with_bias.n_parameters() == two.n_parameters() + 1
    np.testing.assert_array_equal(layers[0][0], relu.make_student(two, 0)[0][0])  # same seed, same weights
    one_d = relu.make_student(relu.RELU_1D.config, 0)
    assert one_d[0][1] is not None and one_d[-1][1] is None


def test_cli_rejects_a_bad_relu_config_and_writes_nothing(tmp_path, capsys):
    from largestep.__main__ import main

    out = tmp_path / "out"
    assert main(["reproduce", "relu_multi_layer", "--set", "widths=[]", "--out", str(out), "--no-progress"]) == 2
    assert "widths must list at least one hidden layer width" in capsys.readouterr().err
    assert not out.exists()


def test_experiment_rows_equal_the_same_runs_trained_alone():
    cfg = _tiny(relu.RELU_MULTI_LAYER)
    together = relu.run(cfg, n_seeds=2)
    for k, spec in enumerate(cfg.runs[:2]):
        alone = relu.run(dataclasses.replace(cfg, runs=(spec,)), n_seeds=2)["runs"][0]
        for metric, curve in together["runs"][k]["curves"].items():
            np.testing.assert_allclose(np.asarray(curve, float), np.asarray(alone["curves"][metric], float),
                                       rtol=1e-9, err_msg=metric)


def test_layers_in_any_memory_order_are_updated_in_place():
    """The trainer copies each run's parameters into one flat row for the compiled loop and back: layers that are
    not C-contiguous (here Fortran-ordered) must end where C-ordered ones do, not keep their initial values."""
    seeds = [0, 1]
    layers = _nets("multi_layer", seeds)
    fortran = [(np.asfortranarray(w), None if b is None else np.asfortranarray(b))
               for w, b in relu_nets.copy_layers(layers)]  # copies: an (R, 1) bias is already Fortran-ordered
    rng = np.random.default_rng(3)
    x, y = rng.standard_normal((10, 4)), rng.standard_normal(10)
    steps = np.full((2, 50), 0.01)
    start = relu_nets.copy_layers(layers)
    for net in (layers, fortran):
        relu_nets.train(net, x, y, steps, seeds, np.array([50]), lambda k: None)
    for (w, b), (wf, bf), (w0, _) in zip(layers, fortran, start):
        assert not np.array_equal(w, w0)
        np.testing.assert_array_equal(wf, w)
        np.testing.assert_array_equal(bf, b)


def test_stopped_rows_are_not_trained_and_the_others_are_unchanged():
    """relu.run passes its diverged mask as `stopped`: a row flagged at a grid point keeps the parameters it had
    there, and every other row ends bit for bit as it does with nothing stopped."""
    seeds = [0, 1, 2]
    layers = _nets("two_layer", seeds)
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((10, 3)), rng.standard_normal(10)
    steps = np.full((3, 100), 0.02)
    free = relu_nets.copy_layers(layers)
    relu_nets.train(free, x, y, steps, seeds, np.array([40, 100]), lambda k: None)
    stopped = np.zeros(3, bool)
    at_40 = {}

    def on_stop(k):
        if k == 40:
            stopped[1] = True
            at_40.update({l: w[1].copy() for l, (w, _) in enumerate(layers)})

    relu_nets.train(layers, x, y, steps, seeds, np.array([40, 100]), on_stop, stopped=stopped)
    for l, ((w, _), (w_free, _)) in enumerate(zip(layers, free)):
        np.testing.assert_array_equal(w[1], at_40[l])
        assert not np.array_equal(w_free[1], at_40[l])
        np.testing.assert_array_equal(w[[0, 2]], w_free[[0, 2]])
