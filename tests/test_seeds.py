import json

import numpy as np
import pytest

from largestep.results import save_json
from largestep.seeds import (FLOAT32_OVERFLOW, Batch, divergence_note, diverged, evaluation_grid, march, run_record,
                             train_tries, train_until_survivors)


def test_evaluation_grid_has_the_first_100_and_250_spaced_points():
    grid = evaluation_grid(100_001)
    assert list(grid[:100]) == list(range(100))
    assert grid[-1] == 100_001 and grid[0] == 0
    assert np.all(np.diff(grid) > 0)
    assert len(grid) == 100 + 250 - 1  # 0 is in both parts


def test_divergence_rule_flags_non_finite_values_and_those_past_the_limit():
    values = np.array([0.0, 1e30, 3.5e38, np.inf, -np.inf, np.nan])
    assert diverged(values).tolist() == [False, False, False, True, True, True]
    # the ReLU nets' rule: a loss past float32's largest value (3.4028235e38) has diverged too
    assert diverged(values, FLOAT32_OVERFLOW).tolist() == [False, False, True, True, True, True]
    assert not diverged(np.float64(np.finfo(np.float32).max), FLOAT32_OVERFLOW)


def test_march_trains_to_each_stop_then_evaluates_there():
    log = []
    seconds = march(np.array([0, 0, 3, 10]), 10, 2, lambda done, target: log.append(("advance", done, target)),
                    lambda k: log.append(("stop", k)))
    assert log == [("stop", 0), ("stop", 0), ("advance", 0, 3), ("stop", 3), ("advance", 3, 10), ("stop", 10)]
    assert set(seconds) == {"train", "metrics"}


def _fake_trainer(diverges, log):
    """Row (run, seed) diverges when diverges(run, seed); its 'loss' curve is run + seed/1000."""
    def train_batch(run_ids, seeds):
        log.append(list(zip(run_ids.tolist(), seeds.tolist())))
        loss = np.array([[r + s / 1000] * 3 for r, s in zip(run_ids, seeds)], dtype=float)
        bad = np.array([diverges(r, s) for r, s in zip(run_ids, seeds)])
        loss[bad, 1:] = np.nan
        return Batch(curves={"loss": loss}, diverged=bad, seconds={"train": 1.0})
    return train_batch


def test_survivors_are_drawn_until_n_survive_and_the_prefix_is_kept():
    log = []
    # run 0 never diverges, run 1: every seed divisible by 3 survives, run 2: deterministic, run 3: always diverges
    rows, seconds = train_until_survivors(
        _fake_trainer(lambda r, s: (r == 1 and s % 3 != 0) or r == 3, log),
        stochastic=[True, True, False, True], n_seeds=3)
    assert [r.seed for r in rows[0]] == [0, 1, 2]
    assert [r.seed for r in rows[1]] == list(range(7))  # survivors 0, 3, 6: stop at the third
    assert [r.diverged for r in rows[1]] == [False, True, True, False, True, True, False]
    assert [r.seed for r in rows[2]] == [0]
    assert [r.seed for r in rows[3]] == list(range(30))  # 10 * N tries, none survived
    assert all(r.diverged for r in rows[3])
    assert seconds["train"] == len(log)
    first_round = log[0]
    assert sorted(set(r for r, _ in first_round)) == [0, 1, 2, 3]
    tried = [pair for batch in log for pair in batch]
    assert len(tried) == len(set(tried))  # no (run, seed) trained twice


def test_fixed_tries_train_every_seed_whatever_diverges_in_bounded_batches():
    log = []
    trainer = _fake_trainer(lambda r, s: (r == 1 and s % 3 != 0) or r == 3, log)
    rows, seconds = train_tries(trainer, stochastic=[True, True, False, True], tries=7, rows_per_batch=5)
    assert [[r.seed for r in run] for run in rows] == [list(range(7)), list(range(7)), [0], list(range(7))]
    assert [r.diverged for r in rows[1]] == [s % 3 != 0 for s in range(7)]
    assert max(len(batch) for batch in log) == 5 and sum(len(b) for b in log) == 22  # in batches of 5 rows
    again, _ = train_tries(_fake_trainer(lambda r, s: (r == 1 and s % 3 != 0) or r == 3, []),
                           stochastic=[True, True, False, True], tries=7, rows_per_batch=100)
    assert [[(r.seed, r.diverged) for r in run] for run in again] == [[(r.seed, r.diverged) for r in run] for run in rows]


def test_run_record_statistics_are_over_survivors_only(tmp_path):
    log = []
    rows, _ = train_until_survivors(_fake_trainer(lambda r, s: s == 1, log), [True], n_seeds=2)
    grid = np.array([0, 5, 10])
    rec = run_record("run", "run", {"schedule": {"lr": 0.1}}, rows[0], grid)
    assert rec["seeds"] == [0, 2] and rec["seeds_tried"] == 3 and rec["diverged_seeds"] == [1]
    assert rec["final_mean"]["loss"] == np.mean([0.000, 0.002])
    assert rec["curves"]["loss"].shape == (2, 3)
    assert rec["diverged"] is False
    path = save_json({"runs": [rec]}, tmp_path / "r.json")
    back = json.loads(path.read_text())
    assert back["runs"][0]["curves_diverged"]["loss"] == [[0.001, None, None]]  # NaN -> null
    assert divergence_note(rec, 2) == "1 of 3 diverged"
    assert divergence_note(rec, 3) == "1 of 3 diverged; only 2 of the 3 seeds asked for survived"


def test_progress_is_one_bar_per_experiment_that_ends_full_without_overshooting(recwarn):
    from largestep.experiments import get
    from largestep.progress import ExperimentProgress

    updates = []

    class Recording(ExperimentProgress):
        def advance(self, iterations):
            super().advance(iterations)
            updates.append((self.bar.n, self.bar.total))

    exp = get("diag_gd")  # a GD program and an SGD program per round, SGD seeds redrawn in further rounds
    bar = Recording("diag_gd")
    exp.run(exp.config.quick(), n_seeds=2, progress=bar)
    assert bar.rounds >= 2  # rounds add to one bar's total
    assert all(n <= total for n, total in updates)  # never past its total: no clamping warning, no negative ETA
    assert updates[-1][0] == pytest.approx(updates[-1][1])
    bar.close()
    assert not [w for w in recwarn if "clamping" in str(w.message)]


def test_progress_bar_shows_the_count_it_reached(capsys):
    """What the user sees: the bar's last drawing counts all its iterations (the count is set before the redraw)."""
    from largestep.experiments import get
    from largestep.progress import ExperimentProgress

    class EveryRedraw(ExperimentProgress):  # tqdm skips redraws within 0.1 s: here each redraws, as a slow run's
        def start_batch(self, *args, **kwargs):
            super().start_batch(*args, **kwargs)
            self.bar.mininterval, self.bar.miniters, self.bar.dynamic_miniters = 0, 0, False

    exp = get("diag_gd")
    config = exp.config.quick()
    bar = EveryRedraw("diag_gd")
    exp.run(config, n_seeds=1, progress=bar)
    bar.close()
    lines = [line for line in capsys.readouterr().err.replace("\n", "\r").split("\r") if line.startswith("diag_gd")]
    assert lines and f"{config.iterations:,}/{config.iterations:,} it" in lines[-1], lines[-3:]


def test_no_bar_when_turned_off_by_the_environment(monkeypatch, capsys):
    from largestep.progress import PROGRESS_ENV, ExperimentProgress

    monkeypatch.setenv(PROGRESS_ENV, "0")
    bar = ExperimentProgress("x")
    bar.start_batch(2, 10, 3)
    bar.advance(10)
    bar.close()
    assert capsys.readouterr().err == ""
