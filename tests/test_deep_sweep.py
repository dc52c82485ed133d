"""deep_nets.sweep: a grid file becomes the runs it lists (checked against runs written out by hand), bad grids are
one line and exit 2 with nothing submitted, and the local submitit executor carries a run through the time-limit
signal and its requeue to the metrics of an uninterrupted run."""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deep_nets import sweep
from deep_nets import train as dn_train
from deep_nets.flags import build_parser

ROOT = Path(__file__).resolve().parent.parent

GRID = """
out_dir = "{out}"
[flags]
dataset = "synthetic"
model = "mlp"
no_data_augm = true
[cross]
seed = [0, 1]
[[setting]]
lr_schedule = "constant"
lr_init = [0.1, 0.2]
[[setting]]
lr_schedule = "step_05epochs"
lr_init = 0.5
exp_name = "decayed"
"""
EXPECTED = {("constant", 0.1, 0, "default"), ("constant", 0.1, 1, "default"), ("constant", 0.2, 0, "default"),
            ("constant", 0.2, 1, "default"), ("step_05epochs", 0.5, 0, "decayed"), ("step_05epochs", 0.5, 1, "decayed")}


def dry_run(path, capsys) -> list:
    assert sweep.main([str(path), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("python deep_nets/train.py ") for line in lines)
    return [build_parser().parse_args(shlex.split(line)[2:]) for line in lines]


def test_grid_expands_to_the_runs_it_lists_in_toml_and_json(tmp_path, capsys):
    (tmp_path / "g.toml").write_text(GRID.format(out=tmp_path / "runs"))
    runs = dry_run(tmp_path / "g.toml", capsys)
    assert len(runs) == 6 and {(r.lr_schedule, r.lr_init, r.seed, r.exp_name) for r in runs} == EXPECTED
    assert all(r.resume and r.no_data_augm and r.out_dir == str(tmp_path / "runs") and r.model == "mlp" for r in runs)
    as_json = {"out_dir": str(tmp_path / "runs"), "flags": {"dataset": "synthetic", "model": "mlp", "no_data_augm": True},
               "cross": {"seed": [0, 1]},
               "setting": [{"lr_schedule": "constant", "lr_init": [0.1, 0.2]},
                           {"lr_schedule": "step_05epochs", "lr_init": 0.5, "exp_name": "decayed"}]}
    (tmp_path / "g.json").write_text(json.dumps(as_json))
    assert [vars(r) for r in dry_run(tmp_path / "g.json", capsys)] == [vars(r) for r in runs]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("name", ["paper_cifar10", "paper_cifar100"])
def test_paper_grids_hold_the_published_commands(name, capsys):
    runs = dry_run(ROOT / "deep_nets" / "sweeps" / f"{name}.toml", capsys)
    dataset = name.split("_")[1]
    published = build_parser().parse_args(  # the paper's command for large steps without explicit regularization
        f"--dataset={dataset} --lr_init=0.75 --lr_schedule=piecewise_05epochs --warmup_exp=1.05 --model=resnet18_plain "
        "--model_width=64 --epochs=100 --batch_size=256 --momentum=0.0 --l2_reg=0.0 --no_data_augm "
        "--eval_iter_freq=200 --exp_name=no_explicit_reg".split())
    same = [r for r in runs if {**vars(r), "seed": 0, "out_dir": "runs", "resume": False} == vars(published)]
    assert len(same) == 3 and len(runs) == 18
    sota = {(r.lr_schedule, r.lr_init) for r in runs if r.exp_name == "sota"}
    assert sota == {("piecewise_01epochs", 0.05), ("piecewise_03epochs", 0.05), ("piecewise_05epochs", 0.05),
                    ("constant", 0.002)}
    assert all(r.momentum == 0.9 and r.l2_reg == 5e-4 and not r.no_data_augm for r in runs if r.exp_name == "sota")
    assert {(r.lr_schedule, r.lr_init) for r in runs if r.exp_name == "no_explicit_reg"} == \
        {("piecewise_05epochs", 0.75), ("constant", 0.01)}


@pytest.mark.parametrize("text,words", [
    ('[flags]\nlr = 0.1', "[flags] lr: train.py has no flag --lr"),
    ('[cross]\nseed = []', "seed is an empty list"),
    ('[cross]\nseed = 3', "[cross] seed must be a list"),
    ('[flags]\nlr_init = "fast"', "run 1 (--lr_init=fast): argument --lr_init: invalid float value"),
    ('[cross]\nmomentum = [0.5, 1.5]', "run 2 (--momentum=1.5): --momentum must lie in [0, 1)"),
    ('[flags]\nout_dir = "x"', "the sweep sets --out_dir itself"),
    ('[flags\nseed = 1', "is not valid TOML"),
    ('seeds = [1]', "unknown top-level keys ['seeds']"),
    ('[cross]\nseed = [1, 1]', "runs 1 and 2 are the same run"),
])
def test_bad_grid_is_one_line_and_nothing_is_submitted(text, words, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(text)
    assert sweep.main(["bad.toml", "--executor", "local"]) == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1, err
    assert [p.name for p in tmp_path.iterdir()] == ["bad.toml"]


def test_missing_grid_file_is_one_line(tmp_path, capsys):
    assert sweep.main([str(tmp_path / "none.toml")]) == 2
    assert "cannot read grid file" in capsys.readouterr().err


def job_process(marker: str) -> int | None:
    """The pid of the submitit task running the job whose folder contains `marker`."""
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"submitit.core._submit" in cmdline and any(marker.encode() in part for part in cmdline):
            return int(entry.name)
    return None


TINY = ["--dataset=synthetic", "--model=mlp", "--model_width=16", "--epochs=4", "--batch_size=4",
        "--eval_iter_freq=256", "--lr_init=0.01", "--sparsity_examples=256", "--bn_refresh_examples=100",
        "--no_data_augm", "--device=cpu"]


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the job's process through /proc")
def test_local_executor_requeues_a_run_stopped_by_its_time_limit_signal_and_loses_nothing(tmp_path):
    pytest.importorskip("submitit", reason="submitit is the optional 'cluster' extra (part of .[dev])")
    out = tmp_path / "sweep"
    flags = "\n".join(f"{a[2:].split('=')[0]} = {json.dumps(_value(a))}" for a in TINY)
    (tmp_path / "tiny.toml").write_text(f'out_dir = "{out}"\n[flags]\n{flags}\n[cross]\nseed = [0, 1]\n')
    job = subprocess.Popen([sys.executable, "-m", "deep_nets.sweep", str(tmp_path / "tiny.toml"), "--executor", "local"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    deadline = time.monotonic() + 180
    while not list(out.glob("default/*seed0/metrics.jsonl")) and time.monotonic() < deadline and job.poll() is None:
        time.sleep(0.05)
    task = job_process(str(out))
    assert task is not None, "the first run's job is not running"
    os.kill(task, signal.SIGUSR2)  # what SLURM (--signal) and submitit's local controller send before the time limit
    log = job.communicate(timeout=300)[0]
    assert job.returncode == 0, log[-3000:]

    job_logs = "".join(p.read_text() for p in (out / "submitit").glob("*_log.*"))
    assert "Requeued job" in job_logs and "Calling checkpoint method" in job_logs
    resumed = re.findall(r"resuming \S+seed0 at iteration (\d+) of 1024", job_logs)
    assert len(resumed) == 1 and 0 < int(resumed[0]) < 1024, job_logs[-3000:]

    assert dn_train.main(TINY + [f"--out_dir={tmp_path / 'plain'}"]) == 0
    timing = {"time_train", "time_eval", "images_per_s"}
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k not in timing}  # noqa: E731
                          for line in path.read_text().splitlines()]
    [plain] = (tmp_path / "plain").rglob("metrics.jsonl")
    [swept] = out.glob("default/*seed0/metrics.jsonl")
    assert strip(swept) == strip(plain)  # bit for bit, through the requeue

    results = json.loads((out / "tiny.json").read_text())
    assert len(results["runs"]) == 1 and results["runs"][0]["seeds"] == [0, 1] and not results["incomplete"]
    assert list(out.glob("tiny.png"))


def _value(arg):
    if "=" not in arg:
        return True
    raw = arg.split("=", 1)[1]
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def test_slurm_where_there_is_none_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    (tmp_path / "g.toml").write_text(GRID.format(out=tmp_path / "runs"))
    assert sweep.main(["g.toml", "--executor", "slurm", "--partition", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm" in err and "srun" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["g.toml"]
