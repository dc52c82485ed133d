"""Claims: the statistics behind them on hand-made records, the `check` command, and the robust claims on
"another machine" (the initialization moved by one unit in the last place)."""
import dataclasses
import json

import numpy as np
import pytest

from largestep import claims
from largestep.__main__ import main
from largestep.experiments import get, run_experiment


def _run(label, values, metric="m"):
    """A run record with one final `metric` per seed 0, 1, ...; None marks a diverged seed."""
    per_seed = [{"seed": s, "diverged": v is None, metric: v} for s, v in enumerate(values)]
    return {"label": label, "final_per_seed": per_seed, "seeds_tried": len(values),
            "seeds_diverged": sum(v is None for v in values)}


def _results(*runs, name="made_up"):
    return {"experiment": name, "config": {"d": 5}, "runs": list(runs)}


def test_median_below_uses_survivors_and_counts_paired_seeds():
    results = _results(_run("a", [1.0, 5.0, 2.0]), _run("b", [3.0, 4.0, None]))
    holds, numbers = claims.median_below("m", 0, 1)(results, {})
    assert holds  # median 2 of (1, 5, 2) below median 3.5 of (3, 4): the diverged seed is not counted
    assert "a: 2 [1, 5]" in numbers and "b: 3.5 [3, 4]" in numbers
    assert "paired seeds lower: 1/2" in numbers  # seeds 0 and 1 survived both; only seed 0 is lower
    assert not claims.median_below("m", 1, 0)(results, {})[0]


def test_seeds_below_compares_every_seed_with_a_factor():
    results = _results(_run("small", [1.0, 2.0]), _run("large", [30.0, 25.0]))
    assert claims.seeds_below("m", 0, 1, factor=10)(results, {})[0]  # 10 * 2 < 25
    assert not claims.seeds_below("m", 0, 1, factor=15)(results, {})[0]  # 15 * 2 > 25
    assert not claims.seeds_below("m", 0, 1)(_results(_run("x", [None]), _run("y", [1.0])), {})[0]


def test_medians_fall_reports_overlap_and_full_orderings():
    results = _results(_run("10%", [3.0, 9.0, 4.0]), _run("30%", [2.0, 1.0, 3.5]), _run("50%", [1.0, 0.5, 3.0]))
    holds, numbers = claims.medians_fall("m", [0, 1, 2])(results, {})
    assert holds  # medians 4 > 2 > 1
    assert "the seed ranges overlap" in numbers and "seeds with the full ordering: 3/3" in numbers
    assert not claims.medians_fall("m", [2, 1, 0])(results, {})[0]


def test_bounds_from_the_config_and_all_diverged():
    results = _results(_run("keeps all", [5.0, 5.0, None]), _run("diverges", [None, None]))
    assert claims.every_seed_within("m", 0, low="d")(results, {})[0]
    assert not claims.every_seed_within("m", 0, low="d")(dict(results, config={"d": 6}), {})[0]
    assert claims.every_seed_diverges(1)(results, {})[0]
    assert not claims.every_seed_diverges(0)(results, {})[0]


def _diag_gd_record(sgd_l0):
    runs = [_run(f"GD {i}", [v], "l0_norm") for i, v in enumerate([100.0, 86.0, 80.0, 78.0])]
    runs.append(_run("SGD", sgd_l0, "l0_norm"))
    for run in runs:
        for seed in run["final_per_seed"]:
            seed["test_loss"] = 0.05 if run["label"] == "SGD" else 0.2 + 0.1 * (run["label"] != "GD 0")
    return _results(*runs, name="diag_gd")


def test_check_prints_every_claim_and_fails_when_a_robust_one_fails(tmp_path, capsys):
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(_diag_gd_record([42.0, 49.0, None])))
    bad.write_text(json.dumps(_diag_gd_record([42.0, 90.0])))  # one SGD seed less sparse than a GD run
    assert main(["check", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.count("PASS  [robust]") == len(claims.CLAIMS["diag_gd"]) and "highest 49 vs lowest 78" in out
    assert main(["check", str(bad)]) == 1
    assert "FAIL  [robust] every surviving SGD seed ends sparser" in capsys.readouterr().out
    assert main(["check", str(tmp_path / "missing.json")]) == 2
    assert capsys.readouterr().err.startswith("error: no results file")
    assert main(["check", "diag_gd", "--dir", str(tmp_path)]) == 2


def test_committed_results_pass_every_robust_claim(capsys):
    assert main(["check"]) == 0, capsys.readouterr().out


def _no_sharpness(exp) -> dict:
    """No claim reads the sharpness, the dearest metric: left out of these reruns."""
    return {"sharpness_points": 0} if hasattr(exp.config, "sharpness_points") else {}


def _one_ulp_up(value: float) -> float:
    return float(np.nextafter(value, np.inf))


@pytest.mark.parametrize("name,field", [
    ("stabilization_1d", "theta0"), ("loss_surface", "init_scale"), ("diag_gd", "init_scale"),
    ("diag_sgd", "init_scale"),
])
def test_robust_claims_hold_with_the_initialization_moved_by_one_ulp(name, field):
    """Another machine rounds differently; here the initialization moves by one unit in the last place,
    which changes which seeds diverge at the edge of divergence (see the report), at the default seed count."""
    exp = get(name)
    config = dataclasses.replace(exp.config, **{field: _one_ulp_up(getattr(exp.config, field))}, **_no_sharpness(exp))
    results = run_experiment(exp, config, n_seeds=5, progress=False)
    failed = [f"{v.claim.text}: {v.numbers}" for v in claims.evaluate(results) if v.claim.robust and not v.holds]
    assert not failed


@pytest.mark.parametrize("name,module,loader", [
    ("diag_sgd", "largestep.experiments.diag", "sparse_regression"),
    ("relu_two_layer", "largestep.experiments.relu", "teacher_student"),
])
def test_robust_claims_hold_with_the_data_moved_by_one_ulp(name, module, loader, monkeypatch):
    """The data moved in the last bit, as another machine's arithmetic might leave it: every training input one
    unit in the last place up (diag nets: labels recomputed from the moved inputs). Another set of seeds then
    diverges at the edge of divergence; every robust claim must still hold, at the default seed count."""
    import dataclasses as dc
    import importlib

    target = importlib.import_module(module)
    original = getattr(target, loader)

    def moved(*args, **kwargs):
        data = original(*args, **kwargs)
        x = np.nextafter(data.x_train, np.inf)
        beta = (data.extras or {}).get("beta_star")
        y = x @ beta if beta is not None else data.y_train
        return dc.replace(data, x_train=x, y_train=y)

    monkeypatch.setattr(target, loader, moved)
    exp = get(name)
    results = run_experiment(exp, dataclasses.replace(exp.config, **_no_sharpness(exp)), n_seeds=5, progress=False)
    failed = [f"{v.claim.text}: {v.numbers}" for v in claims.evaluate(results) if v.claim.robust and not v.holds]
    assert not failed
