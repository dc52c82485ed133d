"""Grouped training (deep_nets/group.py): every run of a group equals that run trained alone by train.py, to float32
rounding, in its run directory (metrics, checkpoint) and in what the deep study reads back."""
import json

import numpy as np
import pytest
import torch

from deep_nets import group, train
from deep_nets.runs import read_run, run_dir
from deep_nets.flags import parse
from largestep.config import ConfigError

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

# the grouped step's products add in another order than nn.Linear's: after 2 epochs (124 SGD steps, step sizes up
# to 0.6) the parameters of a run agree with the run trained alone to this relative tolerance (float32's epsilon is
# 1.2e-7; measured: at most 9e-7 of each tensor's largest entry), and so do its metrics
RTOL = 1e-4


def argv(tmp, lr_schedule, lr, seed, epochs=2):
    return ["--dataset=mnist1d", "--model=mlp", "--model_width=32", f"--epochs={epochs}", "--batch_size=64",
            "--momentum=0", "--l2_reg=0", "--no_data_augm", "--eval_iter_freq=31", "--sparsity_examples=500",
            "--device=cpu", "--threads=1", f"--lr_schedule={lr_schedule}", f"--lr_init={lr}", f"--seed={seed}",
            "--exp_name=grouped", "--resume", f"--out_dir={tmp / 'out'}", f"--data_dir={tmp / 'data'}"]


@pytest.fixture(scope="module")
def tmp(tmp_path_factory):
    return tmp_path_factory.mktemp("group")


def rows(directory):
    return [json.loads(line) for line in (directory / "metrics.jsonl").read_text().splitlines()]


def numbers(row):
    return {k: v for k, v in row.items() if isinstance(v, float) and not k.startswith(("time_", "images_"))}


def test_every_run_of_a_group_equals_the_run_trained_alone(tmp):
    runs = [argv(tmp, "until0.5_then0.05", 0.6, 0), argv(tmp, "constant", 0.05, 1), argv(tmp, "until0.3_then0.05", 0.3, 2)]
    assert group.train_group(runs) == [0, 0, 0]
    for k, run in enumerate(runs):
        directory = run_dir(vars(parse(run)))
        grouped_rows, grouped = rows(directory), torch.load(directory / "checkpoint.pt", weights_only=True)
        alone_argv = [a.replace("--exp_name=grouped", "--exp_name=alone") for a in run]
        assert train.main(alone_argv) == 0
        alone_dir = run_dir(vars(parse(alone_argv)))
        alone_rows, alone = rows(alone_dir), torch.load(alone_dir / "checkpoint.pt", weights_only=True)
        assert [r["iteration"] for r in grouped_rows] == [r["iteration"] for r in alone_rows] == [0, 31, 62, 93, 124]
        for a, b in zip(grouped_rows, alone_rows):
            got, want = numbers(a), numbers(b)
            assert got.keys() == want.keys()
            for key in want:
                assert got[key] == pytest.approx(want[key], rel=RTOL, abs=1e-6), (k, a["iteration"], key)
        for name in ("model", "ema"):
            for key, value in alone[name].items():
                torch.testing.assert_close(grouped[name][key], value, rtol=RTOL, atol=1e-6)
        assert grouped["iteration"] == alone["iteration"] == 124
        assert grouped["stream"]["position"] == alone["stream"]["position"]  # the same data order, drawn alone
        read = read_run(directory)
        assert read.complete and not read.diverged


def test_the_tolerance_can_fail(tmp):
    """The comparison above sees a run one step off: the group's first run with another seed differs."""
    a = run_dir(vars(parse(argv(tmp, "until0.5_then0.05", 0.6, 0))))
    b = run_dir(vars(parse(argv(tmp, "until0.5_then0.05", 0.6, 7))))
    assert group.train_group([argv(tmp, "until0.5_then0.05", 0.6, 7)]) == [0]
    with pytest.raises(AssertionError):
        torch.testing.assert_close(torch.load(a / "checkpoint.pt", weights_only=True)["model"],
                                   torch.load(b / "checkpoint.pt", weights_only=True)["model"], rtol=RTOL, atol=1e-6)


def test_a_grouped_run_is_reused_and_a_diverging_one_leaves_the_group(tmp):
    runs = [argv(tmp, "until0.5_then0.05", 0.6, 0), argv(tmp, "constant", 50.0, 0)]
    assert group.train_group(runs) == [0, 1]  # the first was complete: reused
    diverged = read_run(run_dir(vars(parse(runs[1]))))
    assert diverged.diverged and np.isnan(diverged.curves["test_err"][-1])


def test_runs_that_cannot_share_a_step_are_refused(tmp):
    wide = [a.replace("--model_width=32", "--model_width=16") for a in argv(tmp, "constant", 0.05, 0)]
    with pytest.raises(ConfigError, match="must share model_width"):
        group.train_group([argv(tmp, "constant", 0.05, 0), wide])
    with pytest.raises(ConfigError, match="only mlp"):
        group.check_group([parse(["--model=resnet_tiny"])])


def test_a_group_stopped_midway_resumes_to_the_runs_trained_alone(tmp):
    """--stop_at_iteration saves each run's checkpoint (as a signal would); the group run again with --resume
    continues every run where it stopped and ends where the uninterrupted runs trained alone end."""
    runs = [argv(tmp, "until0.5_then0.05", 0.6, 0), argv(tmp, "constant", 0.05, 1)]
    runs = [[a.replace("--exp_name=grouped", "--exp_name=resumed") for a in run] for run in runs]
    assert group.train_group([run + ["--stop_at_iteration=50"] for run in runs]) == [0, 0]
    assert [rows(run_dir(vars(parse(run))))[-1]["iteration"] for run in runs] == [31, 31]
    assert group.train_group(runs) == [0, 0]
    for run in runs:
        resumed = torch.load(run_dir(vars(parse(run))) / "checkpoint.pt", weights_only=True)
        alone_argv = [a.replace("--exp_name=resumed", "--exp_name=alone") for a in run]
        if not run_dir(vars(parse(alone_argv))).exists():
            assert train.main(alone_argv) == 0
        alone = torch.load(run_dir(vars(parse(alone_argv))) / "checkpoint.pt", weights_only=True)
        assert resumed["iteration"] == 124
        for key, value in alone["model"].items():
            torch.testing.assert_close(resumed["model"][key], value, rtol=RTOL, atol=1e-6)
        assert [r["iteration"] for r in rows(run_dir(vars(parse(run))))] == [0, 31, 62, 93, 124]
