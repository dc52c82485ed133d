"""The reproduce command: quick runs of every experiment, and every bad input (exit 2, nothing written)."""
import json
import subprocess
import sys

import pytest

from largestep import experiments
from largestep.__main__ import main


def _run(argv, capsys):
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", experiments.available())
def test_quick_reproduce_writes_results_and_figures(name, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what an experiment keeps beside its results (deep_mnist1d's run directories)
    code, out, err = _run(["reproduce", name, "--quick", "--seeds", "2", "--out", str(tmp_path), "--no-progress"],
                          capsys)
    assert code == 0, err
    results = json.loads((tmp_path / f"{name}.json").read_text())
    assert results["experiment"] == name and results["quick"] is True
    config_runs = results["config"].get("runs")
    if config_runs:  # runs in config order; an empty config label is derived from the schedule
        assert len(results["runs"]) == len(config_runs)
        for run, spec in zip(results["runs"], config_runs):
            assert run["label"] == spec["label"] or (not spec["label"] and run["label"])
    for run in results["runs"]:
        assert run["seeds_tried"] == len(run["seeds"]) + run["seeds_diverged"]
        assert run["seeds_diverged"] == len(run["diverged_seeds"])
        assert set(run["final"]) and "iteration" in run["curves"]
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    assert (tmp_path / f"{name}.pdf").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left
    # the same figures from the file alone: loading restores what the run returned, NaN included
    assert _run(["draw", str(tmp_path / f"{name}.json"), "--out", str(tmp_path / "drawn")], capsys)[0] == 0
    drawn = sorted(p.name for p in (tmp_path / "drawn").iterdir() if p.suffix in (".png", ".gif"))
    assert drawn == sorted(p.name for p in tmp_path.iterdir() if p.suffix in (".png", ".gif"))
    for file in drawn:
        assert (tmp_path / "drawn" / file).read_bytes() == (tmp_path / file).read_bytes(), file
    from largestep.claims import CLAIMS

    if name in CLAIMS:
        assert f"{name} claims:" in out and "(quick run: the claims are stated for the full-scale settings)" in out
    else:
        assert f"{name}: no claims stated for this experiment" in out


def test_list_names_every_experiment(capsys):
    code, out, _ = _run(["reproduce", "--list"], capsys)
    assert code == 0
    assert [line.split()[0] for line in out.strip().splitlines()] == experiments.available()


@pytest.mark.parametrize("argv,message", [
    (["reproduce", "no_such_experiment"], "unknown experiment"),
    (["reproduce", "diag_sgd", "--seeds", "0"], "--seeds must be >= 1"),
    (["reproduce", "diag_sgd", "--set", "runs.0.schedule.lr=-0.1"], "step size must be"),
    (["reproduce", "diag_sgd", "--set", "runs.1.schedule.decays.0.0=1.5"], "decay fraction must lie in [0, 1]"),
    (["reproduce", "diag_sgd", "--set", "iterations=0"], "iterations must be >= 1"),
    (["reproduce", "diag_sgd", "--set", "no_such_field=3"], "no field"),
    (["reproduce", "diag_sgd", "--set", "iterations=many"], "expected an integer"),
    (["reproduce", "diag_sgd", "--set", "runs.0.algorithm=adam"], "algorithm must be"),
    (["reproduce", "diag_sgd", "--set", "data_seed=-1"], "data_seed must be >= 0"),
    (["reproduce", "relu_1d", "--set", "data_seed=-1"], "data_seed must be >= 0"),
    (["reproduce", "relu_1d", "--set", "rank_points=-1"], "rank_points must be >= 0"),
    (["reproduce", "loss_surface", "--set", "data_seed=-1"], "data_seed must be >= 0"),
    (["reproduce", "relu_1d", "--set", 'runs.0.schedule.warmup={"kind": "linear"}'], "missing field(s)"),
    (["reproduce", "--set", "runs.0.schedule.lr=0.3"], "name one, e.g. `python -m largestep reproduce loss_surface --set"),
    (["reproduce", "--set", "runs.0.schedule.lr=0.3"], "(experiments with runs.0.schedule.lr: loss_surface, diag_sgd, diag_gd, relu_1d"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    out_dir = tmp_path / "out"
    code, out, err = _run(argv + ["--quick", "--out", str(out_dir)], capsys)
    assert code == 2
    assert message in err and err.count("\n") == 1
    assert not out_dir.exists()


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("keep me")
    code, _, err = _run(["reproduce", "diag_sgd", "--quick", "--out", str(target)], capsys)
    assert code == 2 and "not a directory" in err
    assert target.read_text() == "keep me"


def test_overrides_reach_the_run(tmp_path, capsys):
    code, _, err = _run(["reproduce", "diag_gd", "--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress",
                         "--set", "iterations=300", "--set", "runs.0.schedule.lr=1.5"], capsys)
    assert code == 0, err
    results = json.loads((tmp_path / "diag_gd.json").read_text())
    assert results["config"]["iterations"] == 300
    assert results["runs"][0]["schedule"]["lr"] == 1.5
    assert results["runs"][0]["curves"]["iteration"][-1] == 300


def test_derived_labels_follow_overrides(tmp_path, capsys):
    code, _, err = _run(["reproduce", "diag_sgd", "--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress",
                         "--set", "runs.3.schedule.decays.0.0=0.7", "--set", "runs.0.schedule.lr=0.2"], capsys)
    assert code == 0, err
    labels = [r["label"] for r in json.loads((tmp_path / "diag_sgd.json").read_text())["runs"]]
    assert labels[0] == "SGD η=0.2" and labels[3] == "SGD η=0.282, ÷1.5 at 70%"


def test_the_module_runs_as_a_program_and_has_help():
    done = subprocess.run([sys.executable, "-m", "largestep", "reproduce", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seeds" in done.stdout and "--quick" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "largestep", "reproduce", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown experiment")


@pytest.mark.parametrize("flags,expected", [
    (["--quick"], "runs/quick"),
    (["--quick", "--set", "iterations=200"], "runs/quick"),
    (["--set", "iterations=200"], "runs/custom"),
    (["--quick", "--out", "images"], "images"),
])
def test_only_full_scale_defaults_write_images_by_default(flags, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["reproduce", "stabilization_1d", "--seeds", "1", "--no-progress", *flags], capsys)
    assert code == 0, err
    written = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("stabilization_1d.json"))
    assert written == [expected]


def test_quick_figures_and_animation_say_quick(monkeypatch, tmp_path):
    from largestep import landscape
    from largestep.experiments import run_experiment
    from largestep.plotting import QUICK_MARK

    exp = experiments.get("loss_surface")
    results = run_experiment(exp, quick=True, n_seeds=1, progress=False)
    for stem, fig in exp.figures(results).items():
        assert fig.get_suptitle().startswith(QUICK_MARK), stem
    titles = []
    monkeypatch.setattr(landscape, "animate", lambda *a, title, **k: titles.append(title) or [])
    exp.extras(results, tmp_path)
    assert titles and "QUICK" in titles[0]
    full = dict(results, quick=False)
    assert not any(QUICK_MARK in f.get_suptitle() for f in exp.figures(full).values())


def test_results_describe_what_made_them(tmp_path, capsys):
    import platform
    from pathlib import Path

    import numpy as np
    import torch

    code, _, err = _run(["reproduce", "stabilization_1d", "--quick", "--out", str(tmp_path), "--no-progress"], capsys)
    assert code == 0, err
    made_by = json.loads((tmp_path / "stabilization_1d.json").read_text())["provenance"]
    assert made_by["numpy"] == np.__version__ and made_by["torch"] == torch.__version__
    assert made_by["python"] == platform.python_version()
    root = Path(__file__).resolve().parents[1]
    if (root / ".git").exists():
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
        assert made_by["git_commit"].split("+")[0] == head.strip()
