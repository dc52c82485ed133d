"""`compare NEW OLD` matches each run with the same run: a file against itself moves nothing, and a run whose
values moved is the one named."""
import copy
from pathlib import Path

import pytest

from largestep.compare import moved_medians
from largestep.experiments import load

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["relu_multi_layer_draws", "phase_relu", "relu_two_layer"])
def test_a_results_file_compared_with_itself_moves_nothing(name):
    # the draws studies repeat their schedules' keys on every data draw: a run must meet its own draw
    results = load(ROOT / "images" / f"{name}.json")
    assert moved_medians(results, results) == []


def test_the_run_whose_values_moved_is_the_one_named():
    old = load(ROOT / "images" / "relu_multi_layer_draws.json")
    new = copy.deepcopy(old)
    target = next(run for run in new["runs"] if run.get("data_seed") == 8 and run["key"] == "small")
    for seed in target["final_per_seed"]:
        seed["test_loss"] *= 100
    moved = moved_medians(new, old)
    assert moved and all(line.startswith(target["label"] + ": test_loss") for line in moved), moved
