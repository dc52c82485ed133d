"""deep_nets.sweep: a grid file becomes the runs it lists (checked against runs written out by hand) in the run
directories deep_nets.runs names; the runs train here through the launcher the deep study shares (outcomes from
exit statuses, reasons from the logs, results and figures collected), and a SLURM job stopped by its time-limit
signal is requeued by submitit and ends with the metrics of an uninterrupted run.  Bad grids: tests/test_faults.py."""
import json
import os
import re
import shlex
import signal
import time
from pathlib import Path

import pytest

from deep_nets import runs as dn_runs
from deep_nets import launch, sweep
from deep_nets import train as dn_train
from deep_nets.flags import build_parser, parse

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

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
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert all(line.startswith("python deep_nets/train.py ") for line in lines)
    assert err.startswith(f"# {len(lines)} runs into ")
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
    # the published run keeps the name it has always had, and each of the 18 runs gets a directory of its own
    assert dn_runs.run_name(vars(published)) == ("cifar10_resnet18_plain_w64_piecewise_05epochs_lr0.75_wexp1.05_wf1_mom0_"
                                                 "l20_noaug_bs256_ep100_seed0").replace("cifar10", dataset)
    assert len({dn_runs.run_dir(vars(r)) for r in runs}) == 18


def test_the_run_name_holds_every_flag_that_makes_a_run_distinct():
    """Each flag outside SETUP_FLAGS is spelled in the name (always, or where it differs from its default), floats
    exactly; where it cannot be spelled the name ends in a hash of the identity."""
    parser_flags = {a.dest for a in build_parser()._actions} - {"help"}
    assert parser_flags - dn_runs.SETUP_FLAGS == set(dn_runs.NAMED) | set(dn_runs.NAMED_IF_SET)
    base = vars(parse([]))
    changes = {"lr_init": 0.1 + 0.2, "swa_tau": 0.9990000001, "eval_iter_freq": 7, "sparsity_examples": 9,
               "sparsity_neurons": 3, "corr_threshold": 0.5, "bn_refresh_examples": 4, "precision": "bf16",
               "momentum": 1e-20, "seed": 12, "no_data_augm": True, "warmup_exp": 1.0000000000000002}
    names = {dn_runs.run_name(base)}
    for flag, value in changes.items():
        name = dn_runs.run_name({**base, flag: value})
        assert name not in names, flag
        names.add(name)
    assert "lr0.30000000000000004" in dn_runs.run_name({**base, "lr_init": 0.1 + 0.2})
    for setup in ("threads", "device", "eval_batch_size", "exp_name", "stop_at_iteration", "compile"):
        assert dn_runs.run_name({**base, setup: {"threads": 2, "device": "cpu", "eval_batch_size": 8,
                                                 "exp_name": "x", "stop_at_iteration": 3, "compile": True}[setup]}) \
            == dn_runs.run_name(base)
    odd = dn_runs.run_name({**base, "dataset": "npz:/data/my grid (v2).npz"})
    other = dn_runs.run_name({**base, "dataset": "npz:/elsewhere/my grid (v2).npz"})
    assert odd.startswith("npz-my-grid--v2-_resnet18_plain_w64_")
    assert odd != other and re.fullmatch(r"[A-Za-z0-9_.-]+_[0-9a-f]{12}", odd)


def test_labels_say_what_the_schedule_does():
    base = vars(parse([]))
    label = lambda **flags: dn_runs.run_label({**base, **flags})  # noqa: E731
    assert label(lr_schedule="constant", lr_init=0.05) == "η=0.05 constant"
    assert label(lr_schedule="piecewise_01epochs", lr_init=0.6) == "η=0.6 for 10%, then ÷50"
    assert label(lr_schedule="step_03epochs", lr_init=0.6) == "η=0.6 for 30%, then ÷10"
    assert label(lr_schedule="piecewise_05epochs", lr_init=0.75, warmup_exp=1.05) == \
        "η=0.75 rising to 8.6 over 50%, then ÷10"  # 0.75 * 1.05**50 = 8.60
    assert dn_runs.run_label({**base, "lr_schedule": "constant", "momentum": 0.9, "no_data_augm": False},
                             varying=["momentum", "no_data_augm"]) == "η=0.1 constant; momentum 0.9, augmented"


TINY = ["--dataset=synthetic", "--model=mlp", "--model_width=16", "--epochs=4", "--batch_size=4",
        "--eval_iter_freq=256", "--lr_init=0.01", "--sparsity_examples=256", "--bn_refresh_examples=100",
        "--no_data_augm", "--device=cpu"]


TINY_FLAGS = """[flags]
dataset = "synthetic"
model = "mlp"
model_width = 16
epochs = 1
batch_size = 4
eval_iter_freq = 256
sparsity_examples = 256
bn_refresh_examples = 100
no_data_augm = true
device = "cpu"
"""  # a tiny MLP run on the generated set: seconds per run


@pytest.mark.slow
def test_runs_here_report_each_outcome_and_collect_results_and_figures(tmp_path, capsys):
    """Three runs, two at a time: one trains, one diverges, one is refused by train.py at start (its batch does
    not fit the data set, which the dry run cannot know); the failure line gives train.py's reason, the two others
    are collected into the results file and figures.  A rerun finds the two finished and trains nothing."""
    out = tmp_path / "sweep"
    (tmp_path / "tiny.toml").write_text(f"""out_dir = "{out}"
{TINY_FLAGS}[[setting]]
lr_init = [0.01, 1e6]
[[setting]]
lr_init = 0.01
batch_size = 2048
""")
    assert sweep.main([str(tmp_path / "tiny.toml"), "--jobs=2"]) == 1  # a run failed: the exit status says so
    out_text, err = capsys.readouterr()
    assert re.search(r"run 1/3 finished \(", out_text) and re.search(r"run 2/3 diverged \(", out_text)
    refused = parse(["--dataset=synthetic", "--model=mlp", "--model_width=16", "--epochs=1", "--batch_size=2048",
                     "--eval_iter_freq=256", "--sparsity_examples=256", "--bn_refresh_examples=100", "--no_data_augm",
                     "--lr_init=0.01"])
    log = out / "logs" / "default" / f"{dn_runs.run_name(vars(refused))}.log"
    assert f"failed: run 3: --batch_size 2048 exceeds the 1024 training examples (log: {log})" in err
    results = json.loads((out / "tiny.json").read_text())
    assert len(results["runs"]) == 2 and sorted(r["diverged"] for r in results["runs"]) == [False, True]
    assert (out / "tiny.png").stat().st_size > 10_000 and (out / "tiny.pdf").exists()
    assert sweep.main([str(tmp_path / "tiny.toml"), "--jobs=2"]) == 1
    assert len(re.findall(r"run [12]/3 already finished", capsys.readouterr().out)) == 2


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="finds the job's process through /proc")
def test_slurm_job_stopped_by_its_time_limit_signal_is_requeued_and_loses_nothing(tmp_path):
    """A SLURM job (TrainJob) under submitit's local executor, which behaves as SLURM does at a time limit: the
    signal reaches the job mid-run, train.py saves, the job requeues and resumes, bit for bit."""
    submitit = pytest.importorskip("submitit", reason="submitit is the optional 'cluster' extra (part of .[dev])")
    out = tmp_path / "sweep"
    executor = submitit.LocalExecutor(folder=out / "submitit", max_num_timeout=3)
    executor.update_parameters(timeout_min=30, signal_delay_s=60)
    job = executor.submit(launch.TrainJob(TINY + [f"--out_dir={out}", "--resume", "--seed=0"], gpus=1))
    deadline = time.monotonic() + 180
    while not list(out.glob("default/*seed0*/metrics.jsonl")) and time.monotonic() < deadline and not job.done():
        time.sleep(0.05)
    task = job_process(str(out))
    assert task is not None, "the job is not running"
    os.kill(task, signal.SIGUSR2)  # what SLURM (--signal) and submitit's local controller send
    assert job.result() == 0

    job_logs = "".join(p.read_text() for p in (out / "submitit").glob("*_log.*"))
    assert "Requeued job" in job_logs and "Calling checkpoint method" in job_logs
    resumed = re.findall(r"resuming \S+seed0\S* at iteration (\d+) of 1024", job_logs)
    assert len(resumed) == 1 and 0 < int(resumed[0]) < 1024, job_logs[-3000:]

    assert dn_train.main(TINY + [f"--out_dir={tmp_path / 'plain'}"]) == 0
    timing = {"time_train", "time_eval", "images_per_s"}
    strip = lambda path: [{k: v for k, v in json.loads(line).items() if k not in timing}  # noqa: E731
                          for line in path.read_text().splitlines()]
    [plain] = (tmp_path / "plain").rglob("metrics.jsonl")
    [swept] = out.glob("default/*seed0*/metrics.jsonl")
    assert strip(swept) == strip(plain)  # bit for bit, through the requeue


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


def test_slurm_where_there_is_none_is_one_line_and_nothing_is_written(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))  # no srun
    (tmp_path / "g.toml").write_text(GRID.format(out=tmp_path / "runs"))
    assert sweep.main(["g.toml", "--executor", "slurm", "--partition", "gpu"]) == 2
    err = capsys.readouterr().err
    assert "--executor slurm" in err and "srun" in err and len(err.strip().splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["g.toml"]


def test_the_phase_grid_lists_eta_by_f_by_seed_and_its_gpu_hours(capsys):
    """phase_cifar10: the paper's setting without explicit regularization, 7 step sizes x 5 ends of the large-step
    phase x 2 seeds, each cell decayed to the paper's small step; --dry-run adds the GPU-hours, labelled by source."""
    path = ROOT / "deep_nets" / "sweeps" / "phase_cifar10.toml"
    assert sweep.main([str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    runs = [build_parser().parse_args(shlex.split(line)[2:]) for line in out.splitlines()]
    assert len(runs) == 70 and len({dn_runs.run_dir(vars(r)) for r in runs}) == 70
    assert {r.lr_init for r in runs} == {0.01, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5} and {r.seed for r in runs} == {0, 1}
    assert {r.lr_schedule for r in runs} == {f"until{f}_then0.01" for f in (0.05, 0.1, 0.3, 0.5, 0.9)}
    assert all((r.model, r.model_width, r.epochs, r.batch_size, r.momentum, r.l2_reg, r.no_data_augm) ==
               ("resnet18_plain", 64, 100, 256, 0.0, 0.0, True) for r in runs)
    # 70 runs x 100 epochs x 195 iterations x 0.06 s
    assert "# 70 runs, 1,365,000 iterations x 0.06 s = 22.8 GPU-hours (ESTIMATE, not measured" in err


@pytest.mark.slow
def test_a_phase_sweep_collects_into_the_phase_figure(tmp_path, capsys):
    """A 2 x 2 grid of lr_init x untilF_thenS trained here, collected: a results file of the phase family that
    `load` checks, with the cells where the grid put them (one diverges), and the phase figure."""
    from largestep import experiments

    out = tmp_path / "sweep"
    (tmp_path / "tinyphase.toml").write_text(f"""out_dir = "{out}"
{TINY_FLAGS}[[setting]]
lr_init = [0.01, 1e6]
lr_schedule = ["until0.2_then0.01", "until0.6_then0.01"]
""")
    assert sweep.main([str(tmp_path / "tinyphase.toml"), "--jobs=2", "--yes"]) == 0
    capsys.readouterr()
    results = experiments.load(out / "tinyphase.json")
    assert results["family"] == "phase" and results["phase"]["lrs"] == [0.01, 1e6]
    assert results["phase"]["fractions"] == [0.2, 0.6] and results["phase"]["final_lr"] == 0.01
    assert sorted((r["lr"], r["fraction"], r["seeds_diverged"]) for r in results["runs"]) == \
        [(0.01, 0.2, 0), (0.01, 0.6, 0), (1e6, 0.2, 1), (1e6, 0.6, 1)]
    assert (out / "tinyphase.png").stat().st_size > 10_000
