"""The data-draws study: its runs are the base experiment's runs (final metrics unchanged by its sparse
evaluation grid), one per data draw, and its claims table separates failures from untestable draws."""
import dataclasses

import numpy as np
import pytest

from largestep.experiments import draws, relu


def test_each_draw_equals_the_base_experiment_run_alone():
    config = draws.DataDrawsConfig("relu_two_layer", data_seeds=(0, 4)).quick()
    study = draws.run(config, n_seeds=2)
    for data_seed in (0, 4):
        alone = relu.run(dataclasses.replace(relu.RELU_TWO_LAYER.config.quick(), data_seed=data_seed,
                                             sharpness_points=0), n_seeds=2)  # the draws measure no sharpness
        mine = [r for r in study["runs"] if r["data_seed"] == data_seed]
        assert [r["schedule_label"] for r in mine] == [r["label"] for r in alone["runs"]]
        for a, b in zip(mine, alone["runs"]):
            assert a["seeds"] == b["seeds"] and a["diverged_seeds"] == b["diverged_seeds"]
            for metric, value in b["final_median"].items():
                np.testing.assert_array_equal(a["final_median"][metric], value)
            np.testing.assert_equal(a["final_per_seed"], b["final_per_seed"])
    assert [d["paper"] for d in study["draws"]] == [True, False]


def test_claims_table_counts_testable_draws_only():
    claim = {"claim": "c", "holds": True, "numbers": ""}
    results = {"config": {"experiment": "relu_two_layer"}, "n_seeds": 3, "draws": [
        {"data_seed": 0, "paper": True, "testable": True, "survivors": [3, 3], "tried": [3, 9], "claims": [claim]},
        {"data_seed": 1, "paper": False, "testable": False, "survivors": [3, 0], "tried": [3, 30],
         "claims": [{**claim, "holds": None}]},
        {"data_seed": 2, "paper": False, "testable": True, "survivors": [3, 3], "tried": [3, 5],
         "claims": [{**claim, "holds": False}]},
    ]}
    table = draws.claims_table(results)
    assert "1 of 2  c   [0:yes 1:- 2:NO]" in table
    assert "data 1: surviving seeds per run 3/3, 0/30" in table


def test_every_draw_is_validated_before_any_trains():
    from largestep.config import ConfigError
    from largestep.experiments import get, plan

    config = dataclasses.replace(draws.DataDrawsConfig("relu_two_layer", data_seeds=(0, 2**32)))
    with pytest.raises(ConfigError, match="data seed 4294967296: data_seed must be < 2"):
        plan(get("relu_two_layer_draws"), config)


def test_the_study_claims_hold_on_every_testable_draw_or_fail():
    claim = draws.draws_claims(relu.RELU_TWO_LAYER)[0]
    def study(*outcomes):
        return {"draws": [{"data_seed": k, "claims": [{"holds": h}]} for k, h in enumerate(outcomes)]}
    assert claim.check(study(True, None, True), {}) [0]
    holds, numbers = claim.check(study(True, False, None), {})
    assert not holds and "1 of 2 testable draws" in numbers and "data 1: FAILS" in numbers
    assert not claim.check(study(None, None), {})[0]  # no draw could test it
