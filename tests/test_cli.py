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


def _check_quick_results(name, directory, printed, capsys, tmp_path):
    results = json.loads((directory / f"{name}.json").read_text())
    assert results["experiment"] == name and results["quick"] is True
    assert results["family"] == experiments.get(name).family
    config_runs = results["config"].get("runs")
    if config_runs:  # runs in config order, by key; an empty config label is derived from the schedule
        assert [run["key"] for run in results["runs"]] == [spec["key"] for spec in config_runs]
        for run, spec in zip(results["runs"], config_runs):
            assert run["label"] == spec["label"] or (not spec["label"] and run["label"])
    for run in results["runs"]:
        assert run["seeds_tried"] == len(run["seeds"]) + run["seeds_diverged"] + run.get("seeds_collapsed", 0)
        assert run["seeds_diverged"] == len(run["diverged_seeds"])
        assert set(run["final_median"]) and "iteration" in run["curves"]
    assert (directory / f"{name}.png").stat().st_size > 10_000
    assert (directory / f"{name}.pdf").exists()
    assert not [p for p in directory.iterdir() if p.name.startswith(".")]  # no temporary files left
    # the same figures from the file alone: loading restores what the run returned, NaN included
    assert _run(["draw", str(directory / f"{name}.json"), "--out", str(tmp_path / "drawn")], capsys)[0] == 0
    drawn = sorted(p.name for p in (tmp_path / "drawn").iterdir() if p.suffix in (".png", ".gif"))
    assert f"{name}.png" in drawn
    for file in drawn:
        assert (tmp_path / "drawn" / file).read_bytes() == (directory / file).read_bytes(), file
    assert f"{name} claims: {len(experiments.get(name).claims)} shown as SKIP (quick run" in printed


@pytest.mark.parametrize("name", [n for n in experiments.available() if not experiments.get(n).on_request])
def test_quick_reproduce_writes_results_and_figures(name, quick_reproduce, tmp_path, capsys):
    directory, printed = quick_reproduce
    _check_quick_results(name, directory, printed[name], capsys, tmp_path)


@pytest.mark.slow
def test_quick_reproduce_of_the_deep_study(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # its run directories go under runs/quick here
    code, out, err = _run(["reproduce", "deep_mnist1d", "--quick", "--seeds", "2", "--out", str(tmp_path),
                           "--no-progress"], capsys)
    assert code == 0, err
    _check_quick_results("deep_mnist1d", tmp_path, out, capsys, tmp_path / "again")


def test_list_names_every_experiment(capsys):
    code, out, _ = _run(["reproduce", "--list"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert [line.split()[0] for line in lines] == experiments.available()
    assert len({line.index(experiments.get(line.split()[0]).title) for line in lines}) == 1  # one column of titles


@pytest.mark.parametrize("argv,message", [
    (["reproduce", "no_such_experiment"], "unknown experiment"),
    (["reproduce", "diag_sgd", "--seeds", "0"], "--seeds must be >= 1"),
    (["reproduce", "diag_sgd", "--set", "runs.0.schedule.lr=-0.1"], "step size must be"),
    (["reproduce", "diag_sgd", "--set", "runs.1.schedule.decays.0.0=1.5"], "decay fraction must lie in [0, 1]"),
    (["reproduce", "diag_sgd", "--set", "iterations=0"], "iterations must be >= 1"),
    (["reproduce", "diag_sgd", "--set", "no_such_field=3"], "no field"),
    (["reproduce", "diag_sgd", "--set", "iterations=many"], "iterations: expected an integer, got 'many'"),
    (["reproduce", "diag_sgd", "--set", "runs.9.schedule.lr=0.3"], "'9' is not an index of a list of 4 (0 to 3)"),
    (["reproduce", "diag_sgd", "--set", "runs.1.label=$\\frac$"], "run label '$\\frac$' is not mathtext"),
    (["reproduce", "diag_sgd", "--set", "runs.1.key=early;"], "run keys must be identifiers"),
    (["reproduce", "diag_sgd", "--set", "runs.1.key=late"], "run keys must be distinct, got 'late' twice"),
    (["reproduce", "relu_multi_layer", "--set", 'runs.1.schedule.warmup.power=NaN'], "warmup power must be"),
    (["reproduce", "diag_sgd", "--set", "n=1000000000"], "GiB of memory"),
    (["reproduce", "diag_sgd", "--set", "d=100000000"], "need n_test >= 2d = 200000000"),
    (["reproduce", "relu_1d", "--set", "widths=[1000000000]"], "GiB of memory"),
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


@pytest.mark.slow
def test_derived_labels_and_claim_texts_follow_overrides(tmp_path, capsys):
    code, out, err = _run(["reproduce", "diag_sgd", "--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress",
                           "--set", "runs.3.schedule.decays.0.0=0.7", "--set", "runs.0.schedule.lr=0.2"], capsys)
    assert code == 0, err
    labels = [r["label"] for r in json.loads((tmp_path / "diag_sgd.json").read_text())["runs"]]
    assert labels[0] == "SGD η=0.2" and labels[3] == "SGD η=0.282, ÷1.5 at 70%"
    assert "median ℓ0 falls from the 10% to the 30% to the 70% decay" in out


def test_the_module_runs_as_a_program_and_has_help():
    done = subprocess.run([sys.executable, "-m", "largestep", "reproduce", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and "--seeds" in done.stdout and "--quick" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "largestep", "reproduce", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown experiment")


@pytest.mark.parametrize("flags,expected", [
    (["--quick"], "runs/quick"),
    (["--quick", "--set", "iterations=200"], "runs/quick"),
    (["--set", "iterations=200"], "runs/custom"),
    ([], "runs/reproduce"),
    (["--quick", "--out", "images"], "images"),
])
@pytest.mark.slow
def test_images_are_written_only_when_asked(flags, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(["reproduce", "stabilization_1d", "--seeds", "1", "--no-progress", *flags], capsys)
    assert code == 0, err
    written = sorted(str(p.parent.relative_to(tmp_path)) for p in tmp_path.rglob("stabilization_1d.json"))
    assert written == [expected]


def test_quick_figures_and_animation_say_quick(monkeypatch, tmp_path):
    from largestep import landscape
    from largestep.experiments import run_experiment
    from largestep.plotting import QUICK_MARK

    from largestep.experiments import valley

    exp = experiments.get("loss_surface")
    results = run_experiment(exp, quick=True, n_seeds=1, progress=False)
    for stem, fig in valley.figures(results).items():
        assert fig.get_suptitle().startswith(QUICK_MARK), stem
    titles = []
    monkeypatch.setattr(landscape, "animate", lambda *a, title, **k: titles.append(title) or [])
    valley.extras(results, tmp_path)
    assert titles and "QUICK" in titles[0]
    full = dict(results, quick=False)
    assert not any(QUICK_MARK in f.get_suptitle() for f in valley.figures(full).values())


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
    assert made_by["cpu"] and made_by["numba"] and made_by["llvmlite"]
    assert made_by["blas"] and made_by["blas"][0]["internal_api"] == "openblas"
