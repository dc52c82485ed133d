"""The data-draws study: its runs are the base experiment's runs (final metrics unchanged by its sparse
evaluation grid), one per data draw, and its claims table separates failures from untestable draws."""
import dataclasses

import numpy as np

from largestep.experiments import data_draws, relu


def test_each_draw_equals_the_base_experiment_run_alone():
    config = data_draws.DataDrawsConfig("relu_two_layer", data_seeds=(0, 4), seeds_per_run=2).quick()
    study = data_draws.run(config)
    for data_seed in (0, 4):
        alone = relu.run(dataclasses.replace(relu.RELU_TWO_LAYER.config.quick(), data_seed=data_seed), n_seeds=2)
        mine = [r for r in study["runs"] if r["data_seed"] == data_seed]
        assert [r["schedule_label"] for r in mine] == [r["label"] for r in alone["runs"]]
        for a, b in zip(mine, alone["runs"]):
            assert a["seeds"] == b["seeds"] and a["diverged_seeds"] == b["diverged_seeds"]
            for metric, value in b["final"].items():
                np.testing.assert_array_equal(a["final"][metric], value)
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
    table = data_draws.claims_table(results)
    assert "1 of 2  c   [0:yes 1:- 2:NO]" in table
    assert "data 1: surviving seeds per run 3/3, 0/30" in table
