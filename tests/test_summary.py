"""The printed summaries of a results dict (`experiments.summary`, `experiments.per_seed_table`) on hand-made records."""
import records
from largestep.experiments import per_seed_table, summary


def _results(quick=False):
    """Three runs: A (stochastic, seed 1 of 4 diverged), B (deterministic), C (every seed diverged)."""
    return records.results(
        records.run("A", [0.1, None, 0.3, 0.2], "loss", rank=[3.0, None, 5.0, 4.0]),
        records.run("B", [0.5], "loss", label="B (GD)", deterministic=True, rank=[2.0]),
        records.run("C", [None, None], "loss", rank=[None, None]),
        name="toy", quick=quick, n_seeds=3)


def test_summary_gives_median_and_range_over_survivors_and_what_diverged():
    assert summary(_results()).splitlines() == [
        "toy: train 1.5s, total 2.0s; median [min, max] over surviving seeds",
        "  A: loss=0.2 [0.1, 0.3], rank=4 [3, 5]  (1 of 4 diverged)",
        "  B (GD): loss=0.5, rank=2  (deterministic)",
        "  C: no surviving seed  (2 of 2 diverged; only 0 of the 3 seeds asked for survived)",
    ]


def test_summary_of_a_quick_run_says_so():
    assert summary(_results(quick=True)).splitlines()[0].startswith("toy (quick): train 1.5s")


def test_summary_median_is_not_the_mean():
    results = _results()
    results["runs"][0]["final_per_seed"][3]["loss"] = 100.0  # one far seed moves the mean, not the median
    assert "  A: loss=0.3 [0.1, 100], rank=4 [3, 5]  (1 of 4 diverged)" in summary(results).splitlines()


def test_per_seed_table_pairs_seeds_across_runs():
    assert per_seed_table(_results(), "loss").splitlines() == [
        "loss at the end of training",
        "seed            A      B (GD)           C",
        "0             0.1         0.5         div",
        "1             div           -         div",
        "2             0.3           -           -",
        "3             0.2           -           -",
    ]


def test_per_seed_table_widens_for_long_labels():
    results = _results()
    results["runs"][1]["label"] = "GD with a long label"
    lines = per_seed_table(results, "rank").splitlines()
    assert lines[1] == "seed" + " " * 22 + "A" + " " * 2 + "GD with a long label" + " " * 21 + "C"
    assert lines[2] == "0" + " " * 25 + "3" + " " * 21 + "2" + " " * 19 + "div"
