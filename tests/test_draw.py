"""`draw`: figures from a results file alone, the same bytes as `reproduce` drew from memory; the loader."""
import dataclasses
import json
import math
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest

import records
from largestep.__main__ import main
from largestep.config import to_dict
from largestep.experiments import relu
from largestep.results import load_results, save_json
from largestep.schedules import Schedule

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = sorted((ROOT / "images").glob("*.json"))


def _same(memory, loaded, where="results"):
    """Equal values, arrays as lists, NaN equal to NaN (tuples as lists: JSON has no tuple)."""
    if isinstance(memory, np.ndarray):
        memory = memory.tolist()
    if isinstance(memory, dict):
        assert isinstance(loaded, dict) and set(map(str, memory)) == set(loaded), where
        for k, v in memory.items():
            _same(v, loaded[str(k)], f"{where}.{k}")
    elif isinstance(memory, (list, tuple)):
        assert isinstance(loaded, list) and len(memory) == len(loaded), where
        for k, (a, b) in enumerate(zip(memory, loaded)):
            _same(a, b, f"{where}[{k}]")
    elif isinstance(memory, (float, np.floating)) and math.isnan(memory):
        assert isinstance(loaded, float) and math.isnan(loaded), f"{where}: {loaded!r} is not NaN"
    else:
        assert memory == loaded, f"{where}: {memory!r} vs {loaded!r}"


def test_loading_restores_what_run_returned_nan_included(tmp_path):
    cfg = dataclasses.replace(relu.RELU_TWO_LAYER.config, iterations=300, grid_early=5, grid_spaced=10,
                              runs=(relu.ReluRun("a", Schedule(0.05)), relu.ReluRun("b", Schedule(30.0))))
    results = {"experiment": "relu_two_layer", "family": "relu", "config": {}, "n_seeds": 2,
               **relu.run(cfg, n_seeds=2)}
    boom = results["runs"][1]
    assert boom["diverged"] and math.isnan(boom["final_median"]["train_loss"])  # the case the loader must restore
    save_json(results, tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["runs"][1]["final_median"]["train_loss"] is None
    _same(results, load_results(tmp_path / "r.json"))


def test_null_outside_measurements_stays_none(tmp_path):
    record = records.results(records.run("a", [None, 2.0], "loss"), name="x", config={"output_init_scale": None},
                             draws=[{"claims": [{"holds": None}]}])
    (tmp_path / "x.json").write_text(json.dumps(record))
    loaded = load_results(tmp_path / "x.json")
    assert math.isnan(loaded["runs"][0]["final_per_seed"][0]["loss"])
    assert math.isnan(loaded["runs"][0]["curves_diverged"]["loss"][0][1])
    assert loaded["config"]["output_init_scale"] is None and loaded["draws"][0]["claims"][0]["holds"] is None


def test_panels_follow_the_family_and_contents_not_the_name(tmp_path, capsys):
    """A renamed experiment draws as its family draws what it holds: the 1-D views for snapshots."""
    cfg = dataclasses.replace(relu.RELU_1D.config, iterations=200, grid_early=5, grid_spaced=10)
    results = {"experiment": "my_study", "family": "relu", "config": to_dict(cfg), "n_seeds": 1,
               **relu.run(cfg, n_seeds=1)}
    save_json(results, tmp_path / "renamed.json")
    assert main(["draw", str(tmp_path / "renamed.json"), "--out", str(tmp_path / "figs")]) == 0
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "my_study.pdf", "my_study.png", "my_study_snapshots.pdf", "my_study_snapshots.png"]


@pytest.mark.parametrize("content,message", [
    (None, "no results file"),
    ("{not json", "is not JSON"),
    ('{"a": 1}', "is not a results file"),
    ('{"experiment": "x", "runs": [{"curves": {"iteration": [0]}}]}', "field 'family' is missing"),
    ('{"experiment": "x", "family": "relu", "config": {}, "n_seeds": 1, "runs": [{"curves": {"iteration": [0]}}]}',
     "field 'runs.0.key' is missing"),
])
def test_bad_files_exit_2_with_one_line_and_write_nothing(content, message, tmp_path, capsys):
    path = tmp_path / "in" / "r.json"
    if content is not None:
        path.parent.mkdir()
        path.write_text(content)
    out = tmp_path / "out"
    assert main(["draw", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not out.exists()


def _stale(path: Path) -> str:
    """Why the committed PNGs beside a results file need not match what draw makes of it now ('' if they must).

    PNG bytes depend on the results file, the drawing code and matplotlib's version (its fonts come with it).
    The committed set must be what this checkout draws from the committed results file, whatever commit
    computed that file: a change to the drawing code comes with the images redrawn (`python -m largestep draw
    images/NAME.json --out images`), and a change that leaves drawing alone leaves this test running.  Only
    another matplotlib excuses a difference.
    """
    provenance = json.loads(path.read_text()).get("provenance")
    if not provenance:
        return "made before results files recorded their provenance"
    if provenance.get("matplotlib") != version("matplotlib"):
        return f"made with matplotlib {provenance.get('matplotlib')}, this is {version('matplotlib')}"
    return ""


@pytest.mark.parametrize("path", [pytest.param(p, id=p.stem, marks=pytest.mark.skipif(
    bool(_stale(p)), reason=f"committed {p.stem} images are stale: {_stale(p)}")) for p in COMMITTED])
def test_draw_reproduces_committed_pngs(path, tmp_path, capsys):
    assert main(["draw", str(path), "--out", str(tmp_path)]) == 0
    drawn = sorted(tmp_path.glob("*.png"))
    assert drawn
    for png in drawn:
        assert png.read_bytes() == (ROOT / "images" / png.name).read_bytes(), (
            f"{png.name} differs from images/: after a change to the drawing code, redraw the committed set with "
            f"`python -m largestep draw images/{path.name} --out images`")


def test_relu_and_valley_labels_follow_overrides():
    """Legends are derived from the schedule that ran, not typed beside it."""
    from largestep.config import apply_overrides
    from largestep.experiments.valley import LOSS_SURFACE, _plane_label

    cfg = dataclasses.replace(relu.RELU_TWO_LAYER.config, iterations=200, grid_early=2, grid_spaced=4)
    cfg = apply_overrides(cfg, ["runs.1.schedule.lr=0.3", "runs.1.schedule.decays.0.1=3"])
    labels = [run["label"] for run in relu.run(cfg, n_seeds=1)["runs"]]
    assert labels == ["η=0.13", "η=0.3, ÷3 at 10%", "η=0.455, ÷4 at 30%", "η=0.455, ÷5 at 50%"]
    edited = apply_overrides(LOSS_SURFACE.config, ["runs.0.schedule.lr=0.05", "runs.2.schedule.lr=0.5"])
    assert [_plane_label(i, r) for i, r in enumerate(edited.runs)] == [
        "gradient flow (GD η=0.05)", "GD η=3, ÷3 at 50%", "SGD η=0.5, ÷3 at 50%"]
