"""Two sets of results side by side: does a reproduction (another machine, a code change) agree with the
committed results?  `python -m largestep compare NEW OLD` prints, per experiment in both,

- every claim's verdict in OLD and NEW, marked where they differ;
- each run's divergence count in both (k of m, with its 95% interval);
- the final medians of NEW that lie outside OLD's interquartile range of the same run and metric: the numbers
  that moved more than the seed-to-seed spread explains.  Runs are matched by identity: key, and data draw
  where a study has several (its schedules' keys repeat on every draw).

At the edge of divergence the last bits of a sum decide which seeds survive, so counts and medians there move
from one machine to another; a robust claim should not.
"""
from __future__ import annotations

import numpy as np

from . import claims, experiments
from .seeds import divergence_note
from .stats import learner_values


def identity(run: dict) -> tuple:
    """What makes a run the same run in two results files of one experiment."""
    return run.get("data_seed"), run["key"]


def moved_medians(new: dict, old: dict) -> list[str]:
    """'run: metric median 0.31 outside [0.12, 0.25] (old quartiles)' for each final median of `new` outside
    `old`'s interquartile range (runs matched by identity; a run with a single survivor in OLD has no range)."""
    old_runs = {identity(run): run for run in old["runs"]}
    lines = []
    for run in new["runs"]:
        reference = old_runs.get(identity(run))
        if reference is None:
            lines.append(f"{run['label']}: no run of key {run['key']!r} in the old results")
            continue
        for metric in run["final_median"]:
            now, before = learner_values(run, metric), learner_values(reference, metric)
            if not now.size or before.size < 2:
                continue
            low, high = np.percentile(before, [25, 75])
            median = float(np.median(now))
            if not low <= median <= high:
                lines.append(f"{run['label']}: {metric} median {median:.3g} outside [{low:.3g}, {high:.3g}] "
                             f"(old quartiles; {now.size} vs {before.size} survivors)")
    return lines


def _verdicts(results: dict, others: dict) -> list:
    return claims.evaluate(results, experiments.claims_for(results), others)


def report(loaded: list[tuple[str, dict, dict | None]], new_dir, old_dir) -> tuple[str, int]:
    """The comparison as text, and how many robust claims fail in NEW."""
    new_all = {name: new for name, new, _ in loaded}
    old_all = {name: old for name, _, old in loaded if old is not None}
    lines, failures = [f"NEW = {new_dir}, OLD = {old_dir}"], 0
    for name, new, old in loaded:
        now = _verdicts(new, new_all)
        failures += claims.robust_failures(now, bool(new.get("quick")))
        before = _verdicts(old, old_all) if old is not None else [None] * len(now)
        lines.append(f"\n{name}" + (" (quick)" if new.get("quick") else ""))
        for v_new, v_old in zip(now, before):
            def status(v):
                return "  -  " if v is None or v.holds is None else "PASS " if v.holds else "FAIL "
            differs = v_old is not None and v_old.holds != v_new.holds
            kind = "robust" if v_new.claim.robust else "reported"
            lines.append(f"  OLD {status(v_old)} NEW {status(v_new)}{' <- differs' if differs else '':12s} "
                         f"[{kind}] {v_new.text}")
        if old is None:
            continue
        old_runs = {identity(run): run for run in old["runs"]}
        counts = [f"{run['label']}: {divergence_note(old_runs[identity(run)], interval=True)} -> "
                  f"{divergence_note(run, interval=True)}"
                  for run in new["runs"] if identity(run) in old_runs and not run.get("deterministic")
                  and (run["seeds_diverged"], run["seeds_tried"]) != (old_runs[identity(run)]["seeds_diverged"],
                                                                      old_runs[identity(run)]["seeds_tried"])]
        if counts:
            lines.append("  divergence moved: " + "; ".join(counts))
        moved = moved_medians(new, old)
        lines += [f"  moved: {line}" for line in moved] or ["  every final median lies within OLD's quartiles"]
    return "\n".join(lines), failures
