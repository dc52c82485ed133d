"""Phase maps: the 50%-divergence boundary from stored counts (against hand-worked values), and a cell of
the batched grid equal, bit for bit, to the same run trained alone."""
import dataclasses
import math

import numpy as np
import pytest

from largestep import claims
from largestep.experiments import get, phase


def test_boundary_interpolates_between_the_grid_steps_around_one_half():
    lrs = [0.1, 0.2, 0.3, 0.4]
    # 0.2 diverged at eta=0.2, 0.6 at 0.3: one half is reached a quarter... (0.5-0.2)/(0.6-0.2) = 3/4 of the way
    assert phase.boundary(lrs, [0.0, 0.2, 0.6, 1.0]) == pytest.approx(0.275)
    assert phase.boundary(lrs, [0.0, 0.5, 1.0, 1.0]) == pytest.approx(0.2)  # reached exactly at a grid step
    assert phase.boundary(lrs, [0.0, 0.6, 0.2, 1.0]) == pytest.approx(0.1 + 0.5 / 0.6 * 0.1)  # the first crossing
    assert phase.boundary(lrs, [0.7, 0.8, 1.0, 1.0]) == 0.1  # below the grid: its smallest step
    assert math.isnan(phase.boundary(lrs, [0.0, 0.1, 0.2, 0.4]))  # beyond the grid
    assert phase.boundary(lrs, [0.0, float("nan"), 0.6, 1.0]) == pytest.approx(0.1 + 0.5 / 0.6 * 0.2)  # none tried


def _cell(lr, fraction, tried, diverged):
    return {"lr": lr, "fraction": fraction, "seeds_tried": tried, "seeds_diverged": diverged,
            "final_per_seed": [{"diverged": k < diverged, "l0_norm": 10.0 * k} for k in range(tried)]}


def test_boundaries_and_maps_come_from_the_stored_counts():
    # two columns; counts 0/5, 2/7 (0.286), 6/11 (0.545) in the first; 1/6, 5/10 (0.5), 50/50 in the second
    counts = {(0.1, 0.3): (5, 0), (0.2, 0.3): (7, 2), (0.3, 0.3): (11, 6),
              (0.1, 0.6): (6, 1), (0.2, 0.6): (10, 5), (0.3, 0.6): (50, 50)}
    results = {"phase": {"lrs": [0.1, 0.2, 0.3], "fractions": [0.3, 0.6]},
               "runs": [_cell(lr, f, *counts[lr, f]) for lr, f in counts]}
    first = 0.2 + (0.5 - 2 / 7) / (6 / 11 - 2 / 7) * 0.1
    assert phase.boundaries(results) == pytest.approx([first, 0.2])
    medians = phase.median_map(results, "l0_norm")
    assert medians[0, 0] == 20.0 and medians[2, 0] == 80.0 and math.isnan(medians[2, 1])  # survivors only


@pytest.mark.parametrize("name", ["phase_diag", "phase_relu"])
def test_a_cell_of_the_batched_grid_equals_the_same_run_trained_alone(name):
    experiment = get(name)
    config = experiment.config.quick()
    results = experiment.run(config, n_seeds=2)
    assert "phase" in results
    verdicts = claims.evaluate({**results, "experiment": name}, experiment.claims)  # the quick grid lacks cells
    assert len(verdicts) == len(experiment.claims)
    assert any("the grid has no cell" in v.numbers and v.holds is False for v in verdicts)
    base = config.base_config()
    cell = len(config.fractions) * (len(config.lrs) - 1) + 1  # largest eta, middle f: some seeds diverge
    alone = phase.BASES[config.experiment].run(dataclasses.replace(base, runs=(base.runs[cell],)), n_seeds=2)["runs"][0]
    batched = results["runs"][cell]
    assert (batched["lr"], batched["fraction"]) == (config.lrs[-1], config.fractions[1])
    np.testing.assert_equal(batched["final_per_seed"], alone["final_per_seed"])  # every seed and metric, exactly
    assert batched["seeds_tried"] == alone["seeds_tried"] > 0


def test_a_huge_grid_is_refused_from_its_counts_before_any_cell_is_built():
    import time

    from largestep.config import ConfigError
    from largestep.experiments import plan

    config = dataclasses.replace(get("phase_diag").config, lrs=tuple(0.1 + 1e-4 * k for k in range(3000)),
                                 fractions=tuple((k + 1) / 3001 for k in range(3000)))
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="3000 x 3000 = 9,000,000 cells"):
        plan(get("phase_diag"), config)
    assert time.perf_counter() - start < 2


def test_the_boundary_band_comes_from_the_rates_intervals():
    from largestep.stats import wilson_interval

    counts = {0.1: (20, 0), 0.2: (20, 6), 0.3: (20, 14), 0.4: (20, 20)}
    results = {"phase": {"lrs": [0.1, 0.2, 0.3, 0.4], "fractions": [0.5]},
               "runs": [_cell(lr, 0.5, *counts[lr]) for lr in counts]}
    low, high = phase.boundary_band(results)
    upper = [wilson_interval(counts[lr][1], 20)[1] for lr in counts]  # the boundary of the upper bounds comes first
    lower = [wilson_interval(counts[lr][1], 20)[0] for lr in counts]
    assert low[0] == pytest.approx(phase.boundary(list(counts), upper))
    assert high[0] == pytest.approx(phase.boundary(list(counts), lower))
    assert low[0] < phase.boundaries(results)[0] < high[0]
    assert "[" in phase.boundary_text(results)


@pytest.mark.slow
def test_the_quick_deep_map_trains_every_cell_through_train_py_runs_and_reuses_them(tmp_path, monkeypatch):
    """deep_phase's quick map (3 x 3 cells, 2 seeds tried each, one epoch): every (cell, seed) is a train.py run
    directory trained in groups; the results file is of the phase family (load checks it, the phase figure draws
    it); a rerun reuses every run directory and gives the same map."""
    from largestep import experiments

    monkeypatch.chdir(tmp_path)  # its run directories and the generated data set go here
    experiment = get("deep_phase")
    results = experiments.run_experiment(experiment, quick=True, n_seeds=2, progress=False)
    phase_ = results["phase"]
    assert (phase_["lrs"], phase_["fractions"], phase_["min_survivors"]) == ([0.05, 0.65, 1.3], [0.05, 0.3, 0.9], 2)
    assert len(results["runs"]) == 9 and all(r["seeds_tried"] == 2 for r in results["runs"])
    assert results["runs_trained"] == 18 and results["runs_reused"] == 0
    assert len(list((tmp_path / "runs" / "quick" / "deep_phase").iterdir())) == 18
    assert not phase.divergence_fraction(results)[0].any()  # the small step's row: nothing diverges
    (tmp_path / "out").mkdir()
    written = experiments.save(results, tmp_path / "out")
    loaded = experiments.load(written[0])
    assert np.array_equal(phase.median_map(loaded, "feature_sparsity_block4"),
                          phase.median_map(results, "feature_sparsity_block4"), equal_nan=True)
    again = experiments.run_experiment(experiment, quick=True, n_seeds=2, progress=False)
    assert again["runs_trained"] == 0 and again["runs_reused"] == 18
    np.testing.assert_equal([r["final_per_seed"] for r in again["runs"]], [r["final_per_seed"] for r in results["runs"]])


def test_a_results_file_older_than_a_config_field_reads_as_the_settings_it_ran():
    """A field added to a config since a results file was written (here collected_from) had its default then: the
    file is not 'config differs' for lacking it, but is when a field it records differs."""
    from largestep.config import to_dict
    from largestep.experiments import scale_note

    config = to_dict(get("deep_phase").config)
    older = {k: v for k, v in config.items() if k != "collected_from"}
    assert scale_note({"experiment": "deep_phase", "config": older}) == ""
    assert scale_note({"experiment": "deep_phase", "config": {**older, "final_lr": 0.1}}) != ""
    assert scale_note({"experiment": "deep_phase", "config": {**config, "collected_from": "runs/x"}}) != ""
