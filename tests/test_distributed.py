"""torchrun: two Gloo processes on CPU train the run of one process (same global batch, data order, schedule),
stop at a set iteration and resume to the end (both calls exit 0), and stop together on a SIGTERM sent to
torchrun (every rank after the same step, rank 0 saves)."""
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import torch

from deep_nets import data as dn_data
from deep_nets import train as dn_train
from deep_nets.distributed import Processes

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parent.parent
# an MLP: no BatchNorm, whose statistics PyTorch synchronizes across GPUs only
ARGS = ["--dataset=synthetic", "--model=mlp", "--model_width=16", "--epochs=4", "--batch_size=8", "--eval_iter_freq=128",
        "--lr_init=0.01", "--device=cpu", "--sparsity_examples=256", "--bn_refresh_examples=100", "--no_data_augm"]
TIMING = {"time_train", "time_eval", "images_per_s"}


def torchrun(out_dir, *extra):
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "deep_nets/train.py", *ARGS, f"--out_dir={out_dir}", *extra], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def rows(out_dir):
    [path] = Path(out_dir).rglob("metrics.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_equal_one_through_a_stop_and_resume(tmp_path):
    """Stopped at a known iteration (no race with a file's appearance), resumed, both torchrun calls exit 0."""
    assert dn_train.main(ARGS + [f"--out_dir={tmp_path / 'one'}"]) == 0
    one = rows(tmp_path / "one")

    first = torchrun(tmp_path / "two", "--stop_at_iteration=200")
    log = first.communicate(timeout=300)[0]
    assert first.returncode == 0, log[-3000:]
    assert log.count("stopped at iteration 200 (--stop_at_iteration); checkpoint saved") == 1, log[-3000:]  # rank 0

    second = torchrun(tmp_path / "two", "--resume")
    log = second.communicate(timeout=300)[0]
    assert second.returncode == 0, log[-3000:]
    assert "resuming" in log and "at iteration 200 of 512" in log
    two = rows(tmp_path / "two")
    config = json.loads(next((tmp_path / "two").rglob("config.json")).read_text())
    assert config["processes"] == 2 and config["command"].startswith("torchrun --nproc_per_node=2 deep_nets/train.py")

    assert [r["iteration"] for r in two] == [r["iteration"] for r in one] == [0, 128, 256, 384, 512]
    # One process sums 8 per-example gradients; two processes sum 4 each and all-reduce the two means: the same
    # step up to float32 rounding (~1e-7 relative), which 512 steps carry into the weights. Losses therefore agree
    # to 1e-4 relative; a counted quantity may move by an example or a neuron whose value sits at the boundary
    # (error rates: 1/256 of the test set; sparsity: one positive entry in a block).
    for a, b in zip(one, two):
        for key in a:
            if key in TIMING:
                continue
            if key in ("diverged", "iteration", "epoch", "lr"):
                assert a[key] == b[key], key
                continue
            if a[key] is None:
                assert b[key] is None, key
            elif "loss" in key:
                np.testing.assert_allclose(b[key], a[key], rtol=1e-4, err_msg=key)
            else:
                np.testing.assert_allclose(b[key], a[key], atol=1 / 256 + 1e-9, err_msg=key)


@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_after_the_same_step_with_a_checkpoint(tmp_path):
    """The signal is sent once rank 0 has printed its first evaluation (read from the pipe, not raced against a
    file), to a run far too long to end first."""
    job = torchrun(tmp_path, "--epochs=1000")
    lines = []
    for line in job.stdout:
        lines.append(line)
        if line.startswith("iteration      0 "):
            break
    job.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
    log = "".join(lines) + job.communicate(timeout=120)[0]
    stopped = re.findall(r"stopped at iteration (\d+) \(signal 15\); checkpoint saved", log)
    assert len(stopped) == 1, log[-3000:]  # rank 0 alone speaks and saves
    [checkpoint] = tmp_path.rglob("checkpoint.pt")
    assert torch.load(checkpoint, weights_only=True)["iteration"] == int(stopped[0])
    assert "terminate called" not in log  # (torchrun itself ends with a traceback of its SignalException: its way)


def test_each_rank_trains_on_its_part_of_the_same_global_batch():
    """What makes two processes one: rank r's batches are slice r of one process's, augmentation included."""
    data = dn_data.synthetic(n_train=40, n_test=8)
    whole = dn_data.TrainStream(data.x_train, data.y_train, 8, augment=True, seed=3)
    ranks = [dn_data.TrainStream(data.x_train, data.y_train, 8, augment=True, seed=3,
                                 part=Processes(r, 2, torch.device("cpu")).shard(8)) for r in range(2)]
    for _ in range(12):  # across epoch boundaries (5 batches an epoch)
        x, y = whole.next()
        parts = [stream.next() for stream in ranks]
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)
        assert len(parts[0][1]) == 4
