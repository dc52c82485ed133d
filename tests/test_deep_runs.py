"""collect_runs: train.py run directories become the toy experiments' results record (checked against the
metrics lines written here by hand), and the record draws with the shared figure code."""
import json

import numpy as np
import pytest

from deep_nets.runs import RunDirError, collect_runs, read_run

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ARGS = {"dataset": "mnist1d", "model": "mlp", "model_width": 8, "epochs": 2, "batch_size": 10, "momentum": 0.0,
        "l2_reg": 0.0, "eval_iter_freq": 4, "lr_init": 0.6, "lr_schedule": "piecewise_01epochs", "warmup_exp": 1.0,
        "warmup_factor": 1.0, "seed": 0, "out_dir": "x", "exp_name": "e", "device": "cpu", "threads": 1}


def _write_run(root, seed, lr_schedule, test_err, diverge_at=None, stop_at=None, torn=False):
    path = root / f"{lr_schedule}_seed{seed}"
    path.mkdir(parents=True)
    config = {"args": {**ARGS, "seed": seed, "lr_schedule": lr_schedule}, "iterations": 10}
    (path / "config.json").write_text(json.dumps(config))
    lines = []
    for k, it in enumerate([0, 4, 8, 10]):
        if stop_at is not None and it > stop_at:
            break
        diverged = diverge_at is not None and it >= diverge_at
        lines.append(json.dumps({"iteration": it, "test_err": None if diverged else test_err[k], "train_loss": 1.0 / (k + 1),
                                 "diverged": diverged}))
        if diverged:
            break
    text = "\n".join(lines) + "\n" + ('{"iteration": 12, "test_e' if torn else "")
    (path / "metrics.jsonl").write_text(text)


def test_collect_runs_groups_seeds_and_counts_divergence(tmp_path):
    _write_run(tmp_path, 0, "piecewise_01epochs", [0.9, 0.5, 0.4, 0.3])
    _write_run(tmp_path, 1, "piecewise_01epochs", [0.9, 0.6, 0.5, 0.1], torn=True)
    _write_run(tmp_path, 2, "piecewise_01epochs", [0.9, 0.6, 0.5, 0.1], diverge_at=8)
    _write_run(tmp_path, 0, "constant", [0.9, 0.8, 0.7, 0.6])
    _write_run(tmp_path, 1, "constant", [0.9, 0.8, 0.7, 0.6], stop_at=4)  # interrupted: left out
    results = collect_runs(tmp_path, name="mine")
    by_schedule = {r["flags"]["lr_schedule"]: r for r in results["runs"]}
    large, small = by_schedule["piecewise_01epochs"], by_schedule["constant"]
    assert large["seeds"] == [0, 1] and large["diverged_seeds"] == [2] and large["seeds_tried"] == 3
    assert large["final_mean"]["test_err"] == pytest.approx(np.mean([0.3, 0.1]))
    np.testing.assert_array_equal(large["curves"]["iteration"], [0, 4, 8, 10])
    assert large["decay_iterations"] == [1, 9]  # 10% and 90% of 10 iterations
    assert large["label"] == "η=0.6 for 10%, then ÷50"  # the paper's linear branch: the step falls 50x
    assert small["seeds"] == [0] and len(results["incomplete"]) == 1
    assert results["config"]["model"] == "mlp" and "seed" not in results["config"]
    diverged = read_run(tmp_path / "piecewise_01epochs_seed2")
    assert diverged.diverged and np.isnan(diverged.curves["test_err"][2:]).all()


def test_collected_runs_draw_with_the_shared_figure(tmp_path):
    from largestep.experiments.deep import figures

    for seed in range(2):
        _write_run(tmp_path, seed, "step_01epochs", [0.9, 0.5, 0.4, 0.3])
    fig = next(iter(figures(collect_runs(tmp_path)).values()))
    assert [ax.get_title() for ax in fig.axes][:2] == ["test error (axis: after 10% of training)",
                                                     "train loss (fixed training subset)"]


def test_collect_runs_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(RunDirError, match="no train.py run directories"):
        collect_runs(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{")
    (tmp_path / "bad" / "metrics.jsonl").write_text("")
    with pytest.raises(RunDirError, match=r"no train.py run directories .* \(1 skipped; the first, .*bad: .*bad/config.json "
                                          r"is unreadable \(JSONDecodeError"):
        collect_runs(tmp_path)
    _write_run(tmp_path, 0, "constant", [0.9, 0.8, 0.7, 0.6])  # a good one beside it: collected, the bad one said
    results = collect_runs(tmp_path)
    assert len(results["runs"]) == 1 and len(results["skipped"]) == 1
    assert results["skipped"][0].startswith(f"skipped {tmp_path / 'bad'}: {tmp_path / 'bad' / 'config.json'} is unreadable")
