"""Seeds and survivors: the divergence rule, the training loop and the records shared by every experiment.

Words: a *run* is one schedule (one step-size setting) of an experiment, trained over several training *seeds*;
a *row* is one (run, seed) pair, one row of the batched arrays.  A trainer advances its rows with `march`:
train to the next stop, evaluate there, repeat.  An experiment supplies `train_batch(run_ids, seeds) -> Batch`:
one batched program that trains row j as run `run_ids[j]` with training seed `seeds[j]` and reports its
metrics on the evaluation grid.  `train_until_survivors` calls it in rounds until every stochastic run has N
surviving seeds (or 10*N tried), the divergence policy, and `run_record` turns the rows of one run into the
results schema (statistics over surviving seeds only).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .streams import numpy_stream

# The ReLU nets' divergence threshold: their training loss overflowing float32, the precision of the
# paper's code (there the loss turns inf/NaN); our float64 training would otherwise carry on a little longer.
FLOAT32_OVERFLOW = float(np.finfo(np.float32).max)


def diverged(values: np.ndarray, limit: float = math.inf) -> np.ndarray:
    """The divergence rule, elementwise: a loss (or iterate) has diverged where it is not finite or its
    magnitude exceeds `limit` (the ReLU nets pass FLOAT32_OVERFLOW)."""
    if limit == math.inf:
        return ~np.isfinite(values)
    return ~(np.abs(values) <= limit)  # NaN compares False: flagged too


def march(stops: np.ndarray, iterations: int, rows: int, advance: Callable[[int, int], None],
          on_stop: Callable[[int], None], progress=None) -> dict[str, float]:
    """Train to each stop in turn, then evaluate there: the loop of every toy trainer.

    advance(done, target) performs updates done..target-1 of all rows in place; on_stop(k) is called
    after k updates for each k in `stops` (sorted, within [0, iterations]).  progress: the experiment's
    `progress.ExperimentProgress` (or None), one round of `rows` rows advanced at each stop.  Floating-point overflow is silenced: a
    row that blows up turns inf/NaN and keeps running harmlessly (`diverged` tells).
    Returns wall seconds {"train": ..., "metrics": ...} (metrics = time spent in on_stop).
    """
    seconds = {"train": 0.0, "metrics": 0.0}
    if progress is not None:
        progress.start_batch(rows, iterations, len(stops))
    done = 0
    with np.errstate(over="ignore", invalid="ignore"):
        for target in stops:
            start, advanced = time.perf_counter(), int(target) - done
            if target > done:
                advance(done, int(target))
                done = int(target)
            middle = time.perf_counter()
            on_stop(done)
            seconds["train"] += middle - start
            seconds["metrics"] += time.perf_counter() - middle
            if progress is not None:
                progress.advance(advanced)
    return seconds


def advance_live(params: list[np.ndarray], step: Callable[[list[np.ndarray], np.ndarray | slice], None],
                 stopped: np.ndarray | None = None) -> None:
    """step(params of the live rows, rows) for the rows (leading axis) whose parameters are all finite and that
    are not `stopped` (an (R,) mask: rows the caller has already flagged diverged).

    A row holding an inf or NaN has diverged for good (its loss is non-finite from then on, which is how the
    trainers flag it), and a flagged row's metrics are NaN from its divergence on, so either is left out of the
    arithmetic rather than carried along: past the edge of divergence most rows of a sweep die early, and they
    then cost nothing.  rows is slice(None) when every row is live (params passed as they are, updated in
    place), else the live rows' indices (params are copies of those rows, written back afterwards).  A trainer
    whose rows do not depend on each other's arithmetic keeps the survivors' trajectories bit for bit.
    """
    finite = np.ones(len(params[0]), bool) if stopped is None else ~np.asarray(stopped, bool)
    for p in params:
        finite &= np.isfinite(p.reshape(len(p), -1)).all(1)
    if finite.all():
        step(params, slice(None))
        return
    live = np.flatnonzero(finite)
    if not live.size:
        return
    subset = [p[live] for p in params]
    step(subset, live)
    for p, s in zip(params, subset):
        p[live] = s


def sgd_indices(seed: int, n: int, iterations: int) -> np.ndarray:
    """The SGD sampling stream of one training seed: `iterations` indices uniform over n, with replacement.

    It depends on the seed alone, so every run (schedule) of one seed sees the same examples in the same order.
    """
    return numpy_stream("sgd_sampling", seed).integers(0, n, iterations)


def evaluation_grid(iterations: int, n_early: int = 100, n_spaced: int = 250) -> np.ndarray:
    """Iteration counts at which metrics are recorded: 0..n_early-1 and n_spaced points over [0, T].

    "At iteration k" means after k updates, so 0 is the initialization and T the end of training.
    """
    early = np.arange(min(n_early, iterations + 1))
    spaced = np.round(np.linspace(0, iterations, n_spaced)).astype(np.int64)
    return np.unique(np.concatenate([early, spaced, [iterations]]))


@dataclass
class Batch:
    """What one batched training program returns for its R rows.

    curves: metric -> (R, G) array on the evaluation grid (NaN after a row diverged).
    diverged: (R,) bool, True where the loss became non-finite.
    final: metric -> (R,) values at the end; defaults to the last grid column of each curve.
    extras: name -> list of R per-row objects (final weights, snapshots...), kept for survivors.
    seconds: name -> wall seconds spent, e.g. {"train": ..., "metrics": ...}.
    """

    curves: dict[str, np.ndarray]
    diverged: np.ndarray
    final: dict[str, np.ndarray] = field(default_factory=dict)
    extras: dict[str, list] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    collapsed: np.ndarray | None = None  # (R,) bool: a surviving row whose net died (see run_record)

    def __post_init__(self):
        for name, values in self.curves.items():
            self.final.setdefault(name, values[:, -1])


@dataclass
class SeedRow:
    seed: int
    diverged: bool
    curves: dict[str, np.ndarray]
    final: dict[str, float]
    extras: dict[str, object]
    collapsed: bool = False


def _rows_of(batch: Batch, run_ids: np.ndarray, seeds: np.ndarray) -> list[tuple[int, SeedRow]]:
    rows = []
    for j, (run, seed) in enumerate(zip(run_ids, seeds)):
        rows.append((int(run), SeedRow(
            seed=int(seed),
            diverged=bool(batch.diverged[j]),
            curves={k: v[j] for k, v in batch.curves.items()},
            final={k: float(v[j]) for k, v in batch.final.items()},
            extras={k: v[j] for k, v in batch.extras.items()},
            collapsed=bool(batch.collapsed[j]) and not bool(batch.diverged[j]) if batch.collapsed is not None else False,
        )))
    return rows


def _kept_prefix(rows: list[SeedRow], n_seeds: int) -> list[SeedRow]:
    """Seeds in order up to the n-th survivor: what sequential drawing 'until N survive' would see."""
    rows = sorted(rows, key=lambda r: r.seed)
    survivors = 0
    for i, row in enumerate(rows):
        survivors += not row.diverged
        if survivors == n_seeds:
            return rows[: i + 1]
    return rows


def train_until_survivors(
    train_batch: Callable[[np.ndarray, np.ndarray], Batch],
    stochastic: Sequence[bool],
    n_seeds: int,
    max_tries_factor: int = 10,
) -> tuple[list[list[SeedRow]], dict[str, float]]:
    """Train every run until it has `n_seeds` surviving seeds, all runs batched in each round.

    Deterministic runs (GD, gradient flow: no training randomness) are trained once, with seed 0.
    Returns the rows of each run (seed order, truncated after the n-th survivor) and the summed
    seconds of the batches.
    """
    n_runs = len(stochastic)
    max_tries = [max_tries_factor * n_seeds if s else 1 for s in stochastic]
    rows: list[list[SeedRow]] = [[] for _ in range(n_runs)]
    seconds: dict[str, float] = {}
    want = [n_seeds if s else 1 for s in stochastic]
    while True:
        run_ids, seeds = [], []
        for run in range(n_runs):
            tried = len(rows[run])
            alive = sum(not r.diverged for r in rows[run])
            need = want[run] - alive
            if need <= 0 or tried >= max_tries[run]:
                continue
            if tried == 0:
                count = want[run]
            else:  # draw enough that, at the survival rate seen so far, one more round likely suffices
                rate = max(alive / tried, 1.0 / (tried + 1))
                count = math.ceil(1.5 * need / rate)
            count = min(count, max_tries[run] - tried)
            run_ids += [run] * count
            seeds += list(range(tried, tried + count))
        if not run_ids:
            break
        run_ids_arr, seeds_arr = np.array(run_ids), np.array(seeds)
        batch = train_batch(run_ids_arr, seeds_arr)
        for key, value in batch.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + value
        for run, row in _rows_of(batch, run_ids_arr, seeds_arr):
            rows[run].append(row)
    return [_kept_prefix(r, w) for r, w in zip(rows, want)], seconds


def train_tries(train_batch: Callable[[np.ndarray, np.ndarray], Batch], stochastic: Sequence[bool], tries: int,
                rows_per_batch: int = 512) -> tuple[list[list[SeedRow]], dict[str, float]]:
    """Train every stochastic run with seeds 0..tries-1, whatever diverges (deterministic runs once, seed 0): a
    fixed number of tries per run, so that each run's divergence rate is an estimate with a known count (phase
    maps), unlike `train_until_survivors`, which stops drawing once enough seeds survive.  Rows go in batches of
    at most rows_per_batch (a row holds its step sizes and sample stream, 16 bytes per iteration)."""
    counts = [tries if s else 1 for s in stochastic]
    run_ids = np.repeat(np.arange(len(counts)), counts)
    seeds = np.concatenate([np.arange(c) for c in counts]) if counts else np.zeros(0, np.int64)
    rows: list[list[SeedRow]] = [[] for _ in counts]
    seconds: dict[str, float] = {}
    for start in range(0, len(run_ids), rows_per_batch):
        chunk = slice(start, start + rows_per_batch)
        batch = train_batch(run_ids[chunk], seeds[chunk])
        for key, value in batch.seconds.items():
            seconds[key] = seconds.get(key, 0.0) + value
        for run, row in _rows_of(batch, run_ids[chunk], seeds[chunk]):
            rows[run].append(row)
    return rows, seconds


def measure_survivors(rows: list[list[SeedRow]], train_batch: Callable[[np.ndarray, np.ndarray], Batch],
                      names: Sequence[str]) -> dict[str, float]:
    """Train the surviving seeds of every run again with `train_batch`, which measures the metrics `names` too
    (a dear one, the sharpness, measured on the seeds statistics are taken over rather than on every seed tried),
    and put those curves and finals into their rows.  A row's arithmetic does not depend on the rows batched with
    it, so each seed retraces its first trajectory bit for bit (checked: it must survive again)."""
    where = [(run, j) for run, run_rows in enumerate(rows) for j, row in enumerate(run_rows) if not row.diverged]
    if not where:
        return {}
    run_ids = np.array([run for run, _ in where])
    seeds = np.array([rows[run][j].seed for run, j in where])
    batch = train_batch(run_ids, seeds)
    for k, (run, j) in enumerate(where):
        row = rows[run][j]
        if batch.diverged[k]:
            raise RuntimeError(f"run {run} seed {row.seed} diverged when trained again: its trajectory changed")
        for name in names:
            row.curves[name] = batch.curves[name][k]
        for name, values in batch.final.items():
            if any(name == m or name.startswith(m + "_") for m in names):
                row.final[name] = float(values[k])
    return batch.seconds


SEED_POLICIES = ("survivors", "tries")


def train_seeds(policy: str, train_batch, stochastic: Sequence[bool], n_seeds: int):
    """The seed policy a config names: 'survivors' (`train_until_survivors`: n_seeds surviving seeds per run,
    at most 10x tried) or 'tries' (`train_tries`: n_seeds tried per run, whatever diverges)."""
    if policy == "tries":
        return train_tries(train_batch, stochastic, n_seeds)
    return train_until_survivors(train_batch, stochastic, n_seeds)


def _stack(rows: list[SeedRow], metric: str) -> np.ndarray:
    return np.stack([r.curves[metric] for r in rows]) if rows else np.zeros((0, 0))


def run_record(key: str, label: str, spec: dict, rows: list[SeedRow], grid: np.ndarray,
               deterministic: bool = False) -> dict:
    """One run's entry of the results schema.  Its seeds fall in three groups: diverged (the loss overflowed),
    collapsed (survived, but a hidden layer has no neuron active on any training example: the net outputs a
    constant, and its dead layer would read as perfectly sparse) and the seeds that learned; statistics,
    curves and extras are over the seeds that learned (`stats.learner_values`), the others kept apart.

    key: the run's name in claims (stable whatever its schedule); label: what legends and tables show.
    """
    from .stats import learner_mean, learner_median

    learned = [r for r in rows if not r.diverged and not r.collapsed]
    collapsed = [r for r in rows if not r.diverged and r.collapsed]
    diverged = [r for r in rows if r.diverged]
    metrics = list(rows[0].curves) if rows else []
    record = {
        "key": key,
        "label": label,
        **spec,
        "deterministic": deterministic,
        "seeds": [r.seed for r in learned],
        "seeds_tried": len(rows),
        "seeds_diverged": len(diverged),
        "diverged_seeds": [r.seed for r in diverged],
        "seeds_collapsed": len(collapsed),
        "collapsed_seeds": [r.seed for r in collapsed],
        "diverged": not learned and not collapsed,
        "final_per_seed": [{"seed": r.seed, "diverged": r.diverged, "collapsed": r.collapsed, **r.final}
                           for r in rows],
        "curves": {"iteration": grid, **{m: _stack(learned, m) for m in metrics}},
        "curves_collapsed": {m: _stack(collapsed, m) for m in metrics},
        "curves_diverged": {m: _stack(diverged, m) for m in metrics},
    }
    finals = list(rows[0].final) if rows else []
    record["final_median"] = {k: learner_median(record, k) for k in finals}
    record["final_mean"] = {k: learner_mean(record, k) for k in finals}
    extras = {k: [r.extras[k] for r in learned] for k in (rows[0].extras if rows else {})}
    if extras:
        record["extras"] = extras
    return record


def divergence_note(run: dict, n_seeds: int | None = None, interval: bool = False) -> str:
    """'k of m diverged' (and 'j of the s surviving collapsed') for legends and summaries: survival conditioning
    is part of the result; with interval=True each rate with its 95% interval (`stats.rate_text`).

    With n_seeds (the survivors asked for), says so when fewer survived.
    """
    from .stats import rate_text

    if run.get("deterministic"):
        return "diverged" if run["diverged"] else "deterministic"
    survivors = run["seeds_tried"] - run["seeds_diverged"]
    if interval:
        note = rate_text(run["seeds_diverged"], run["seeds_tried"], "diverged")
    else:
        note = f"{run['seeds_diverged']} of {run['seeds_tried']} diverged"
    lost = run.get("seeds_collapsed", 0)
    if lost:
        note += "; " + (rate_text(lost, survivors, "surviving collapsed") if interval else
                        f"{lost} of {survivors} surviving collapsed")
    if n_seeds is not None and survivors < n_seeds:
        note += f"; only {survivors} of the {n_seeds} seeds asked for survived"
    return note
