"""Claims: what an experiment's results must show, as checks on a results record alone.

A claim is *robust* when it must hold on any machine: its margin is wide against the spread over seeds and
against which seeds diverge (at the edge of divergence the last bits of a sum decide that, so the surviving
seeds differ between CPUs).  The paper's orderings whose seed ranges overlap are kept too, marked "paper's
ordering, reported, not robust": another machine may flip them.  Statistics are over surviving seeds:
medians with [min, max], and paired counts over the seeds that survived in both runs (runs of one experiment
share training seeds: the same initialization and sampling order).

Claims name runs by their key (a config's run field `key`: "constant", "early", "late", ...), never by their
position, and their texts name runs through the results: "{late.at}" is the late run's decay point as it was
run ("50%"), "{late.lr}" its step size, "{late.label}" its legend.  An edited config (`--set`) is then described
as it was run, and a claim whose run is missing is reported as not evaluated.  Each experiment's claims live
with it in its family module; `python -m largestep check` prints them as PASS/FAIL with their numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .stats import counted, learner_spread
from .stats import learner_median as median
from .stats import learner_values as final_values

NOT_ROBUST = "paper's ordering, reported, not robust"
OBSERVED = "observed here, reported, not robust"


@dataclass(frozen=True)
class Claim:
    text: str  # may name runs as {key.at}, {key.lr}, {key.label}
    robust: bool
    check: Callable[[dict, dict], tuple[bool, str]]  # (results, other experiments' results by name) -> (holds, numbers)
    needs: str | None = None  # another experiment whose results the check compares with
    paper: bool = True  # a claim that is not robust: the paper's ordering (True) or an observation of ours
    uses: tuple[str, ...] = ()  # metrics it reads that not every study records (the sharpness)
    basis: str = ""  # why it is robust or only an ordering: the seeds and the spread its kind rests on

    @property
    def kind(self) -> str:
        return "robust" if self.robust else NOT_ROBUST if self.paper else OBSERVED


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    text: str  # the claim's text with its runs named as they were run
    holds: bool | None  # None: not evaluated (a run or the results it compares with are missing)
    numbers: str


class MissingRun(KeyError):
    """The results have no run of that key (an edited config dropped it)."""


def run_of(results: dict, key: str) -> dict:
    for run in results["runs"]:
        if run.get("key") == key:
            return run
    raise MissingRun(key)


class _RunWords:
    """How a claim's text names one run: its label, step size and first decay point, as recorded."""

    def __init__(self, run: dict):
        self.label = run["label"]
        schedule = run.get("schedule") or {}
        lr = schedule.get("lr", run.get("lr"))
        self.lr = f"{lr:g}" if isinstance(lr, (int, float)) else "?"
        decays = schedule.get("decays") or []
        first = decays[0][0] if decays and isinstance(decays[0], list) and decays[0] else None
        self.at = f"{first:.0%}" if isinstance(first, (int, float)) else "no decay"


class _Runs(dict):
    def __missing__(self, key):
        raise MissingRun(key)


def claim_text(claim: Claim, results: dict) -> str:
    """The claim's text with its runs named from the results; MissingRun when one is absent."""
    return claim.text.format_map(_Runs({run["key"]: _RunWords(run) for run in results["runs"] if "key" in run}))


def spread(run: dict, metric: str, fmt: str = ".3g") -> str:
    """'label: median [min, max]' over the seeds that learned, and how many collapsed seeds are left out."""
    lost = run.get("seeds_collapsed", 0)
    out = f" ({lost} collapsed left out)" if lost else ""
    return f"{run['label']}: {learner_spread(run, metric, fmt)}{out}"


def paired_below(a: dict, b: dict, metric: str) -> tuple[int, int]:
    """Seeds that survived in both runs: how many have a's final metric below b's, out of how many."""
    fa = {r["seed"]: r[metric] for r in a["final_per_seed"] if counted(r)}
    fb = {r["seed"]: r[metric] for r in b["final_per_seed"] if counted(r)}
    shared = sorted(set(fa) & set(fb))
    return sum(fa[s] < fb[s] for s in shared), len(shared)


# ---- claim kinds: each returns a check(results, others) -> (holds, numbers); runs are named by key


def median_below(metric: str, a: str, b: str, fmt: str = ".3g"):
    """Run a's median final metric is below run b's."""
    def check(results, others):
        ra, rb = run_of(results, a), run_of(results, b)
        k, n = paired_below(ra, rb, metric)
        return (bool(median(ra, metric) < median(rb, metric)),
                f"{spread(ra, metric, fmt)} vs {spread(rb, metric, fmt)}; paired seeds lower: {k} of {n}")
    return check


def medians_below(metric: str, runs: list[str], reference: str, fmt: str = ".3g"):
    """Each of `runs` has a lower median final metric than run `reference`."""
    def check(results, others):
        ref = run_of(results, reference)
        chosen = [run_of(results, key) for key in runs]
        pairs = [paired_below(r, ref, metric) for r in chosen]
        return (all(median(r, metric) < median(ref, metric) for r in chosen),
                "; ".join(spread(r, metric, fmt) for r in [ref, *chosen])
                + "; paired seeds lower: " + ", ".join(f"{k} of {n}" for k, n in pairs))
    return check


def medians_fall(metric: str, runs: list[str], fmt: str = ".3g"):
    """Medians strictly decrease along `runs`; the numbers say whether seed ranges overlap and how many
    seeds (surviving in all of them) show the full ordering."""
    def check(results, others):
        chosen = [run_of(results, key) for key in runs]
        meds = [median(r, metric) for r in chosen]
        values = [final_values(r, metric) for r in chosen]
        overlap = any(x.min() <= y.max() for x, y in zip(values, values[1:]) if x.size and y.size)
        per_seed = [{s["seed"]: s[metric] for s in r["final_per_seed"] if counted(s)} for r in chosen]
        shared = sorted(set.intersection(*(set(p) for p in per_seed)))
        ordered = sum(all(x[s] > y[s] for x, y in zip(per_seed, per_seed[1:])) for s in shared)
        return (all(x > y for x, y in zip(meds, meds[1:])),
                "; ".join(spread(r, metric, fmt) for r in chosen)
                + ("; the seed ranges overlap" if overlap else "; the seed ranges are disjoint")
                + f"; seeds with the full ordering: {ordered} of {len(shared)}")
    return check


def seeds_below(metric: str, a: str | list[str], b: str | list[str], factor: float = 1.0, fmt: str = ".3g"):
    """Every surviving seed of the run(s) a ends at least `factor` times below every surviving seed of the
    run(s) b (deterministic runs count as one seed)."""
    a_keys, b_keys = ([a] if isinstance(a, str) else a), ([b] if isinstance(b, str) else b)

    def check(results, others):
        ra = [run_of(results, key) for key in a_keys]
        rb = [run_of(results, key) for key in b_keys]
        va = np.concatenate([final_values(r, metric) for r in ra])
        vb = np.concatenate([final_values(r, metric) for r in rb])
        holds = bool(va.size and vb.size and factor * va.max() < vb.min())
        worst = f"highest {va.max():{fmt}} vs lowest {vb.min():{fmt}}" if va.size and vb.size else "a run has no survivor"
        return holds, worst + " (" + "; ".join(spread(r, metric, fmt) for r in ra + rb) + ")"
    return check


def every_seed_within(metric: str, run: str, low: float | str = -np.inf, high: float = np.inf, fmt: str = ".3g"):
    """Every surviving seed of the run ends with low <= metric <= high (and at least one survived); a bound
    given as a string is that field of the results' config."""
    def check(results, others):
        bound = results["config"][low] if isinstance(low, str) else low
        r = run_of(results, run)
        v = final_values(r, metric)
        outside = [s["seed"] for s in r["final_per_seed"]
                   if counted(s) and not bound <= s[metric] <= high]
        return (bool(v.size) and not outside,
                f"{spread(r, metric, fmt)}; {v.size} seeds that learned, outside: "
                f"{outside or 'none'}")
    return check


def median_at_most(metric: str, run: str, high: float):
    """The run's median final metric is below `high`; the numbers list the seeds above it."""
    def check(results, others):
        r = run_of(results, run)
        v = final_values(r, metric)
        above = [s["seed"] for s in r["final_per_seed"] if counted(s) and s[metric] > high]
        return (bool(v.size) and bool(np.median(v) < high),
                f"{spread(r, metric, '.2g')}; seeds above {high:g}: {len(above)} of {v.size} {above}")
    return check


def sharpness_above(runs: list[str], window: str, none: bool):
    """Over the surviving seeds of `runs`: whether their sharpness went above 2/eta of their step in the `window`
    ('early': the first 2% of training; 'later': the rest).  none=True: the claim is that no seed did; False:
    that at least one did.  The numbers give each run's count with its 95% interval and the seeds' maxima."""
    from .stats import rate_text

    name = f"sharpness_above_2_over_eta_{window}"

    def check(results, others):
        counts, parts, largest = [0, 0], [], []
        for key in runs:
            run = run_of(results, key)
            flags = [s[name] for s in run["final_per_seed"] if counted(s) and s.get(name) == s.get(name)
                     and s.get(name) is not None]
            counts[0] += int(sum(flags))
            counts[1] += len(flags)
            parts.append(f"{run['label']}: {rate_text(int(sum(flags)), len(flags))}")
            largest.append(f"{run['label']}: {learner_spread(run, 'sharpness_max')}")
        holds = counts[1] > 0 and (counts[0] == 0 if none else counts[0] > 0)
        return holds, f"above 2/η {'in the first 2%' if window == 'early' else 'later'}: {'; '.join(parts)} " \
                      f"(each seed's largest sharpness: {'; '.join(largest)})"
    return check


def collapse_only_with(large: list[str], small: list[str]):
    """Seeds collapse in the runs `large` and none in `small`: the counts, each with its 95% interval."""
    from .stats import rate_text

    def check(results, others):
        def count(keys):
            runs = [run_of(results, key) for key in keys]
            return (sum(r.get("seeds_collapsed", 0) for r in runs),
                    sum(r["seeds_tried"] - r["seeds_diverged"] for r in runs))
        (k_large, n_large), (k_small, n_small) = count(large), count(small)
        return (k_small == 0 < k_large and n_small > 0,
                f"collapsed, of the surviving seeds: {rate_text(k_small, n_small)} with the small step, "
                f"{rate_text(k_large, n_large)} over the large-step runs")
    return check


def all_of(*checks):
    def check(results, others):
        outcomes = [c(results, others) for c in checks]
        return all(holds for holds, _ in outcomes), "; ".join(numbers for _, numbers in outcomes)
    return check


def every_seed_diverges(run: str):
    def check(results, others):
        r = run_of(results, run)
        at = r.get("diverged_at") or []
        when = f", all by iteration {max(at)}" if at else ""
        return (r["seeds_tried"] > 0 and r["seeds_diverged"] == r["seeds_tried"],
                f"{r['label']}: {r['seeds_diverged']} of {r['seeds_tried']} diverged{when}")
    return check


def median_below_other(metric: str, run: str, other: str, other_run: str):
    """Run `run`'s median is below run `other_run` of another experiment's results (paired by seed)."""
    def check(results, others):
        ra, rb = run_of(results, run), run_of(others[other], other_run)
        k, n = paired_below(ra, rb, metric)
        return (bool(median(ra, metric) < median(rb, metric)),
                f"{spread(ra, metric)} vs {other} {spread(rb, metric)}; paired seeds lower: {k} of {n}")
    return check


# ---- evaluating and reporting


def evaluate(results: dict, claims, others: dict | None = None) -> list[Verdict]:
    """Each claim on `results` (`others`: other experiments' results by name, for claims that compare with
    them; a claim whose reference or run is missing is reported as not evaluated)."""
    others = others or {}
    verdicts = []
    for claim in claims:
        try:
            text = claim_text(claim, results)
        except MissingRun as err:
            verdicts.append(Verdict(claim, claim.text, None, f"not evaluated: these results have no run {err}"))
            continue
        if claim.needs and claim.needs not in others:
            verdicts.append(Verdict(claim, text, None, f"not evaluated: needs {claim.needs}'s results"))
            continue
        try:
            holds, numbers = claim.check(results, others)
        except MissingRun as err:
            holds, numbers = None, f"not evaluated: these results have no run {err}"
        verdicts.append(Verdict(claim, text, None if holds is None else bool(holds), numbers))
    return verdicts


def robust_failures(verdicts: list[Verdict], quick: bool = False) -> int:
    """Robust claims that fail (none in a quick run, whose claims are not checked: see `report`)."""
    return 0 if quick else sum(v.claim.robust and v.holds is False for v in verdicts)


def status(verdict: Verdict, quick: bool = False) -> str:
    """'PASS', 'FAIL', 'n/a' (not evaluable on these results) or, in a quick run, 'SKIP'."""
    return "n/a" if verdict.holds is None else "SKIP" if quick else "PASS" if verdict.holds else "FAIL"


def report(name: str, verdicts: list[Verdict], quick: bool = False, note: str = "") -> str:
    """The claims as printed by `check` and at the end of `reproduce`: PASS/FAIL, robust or not, numbers.
    A quick run's claims are shown as SKIP with their numbers: they are stated for the full-scale settings."""
    if not verdicts:
        return f"{name}: no claims stated for these results"
    evaluated = [v for v in verdicts if v.holds is not None]
    robust = [v for v in evaluated if v.claim.robust]
    ordering = [v for v in evaluated if not v.claim.robust]
    if quick:
        head = f"{name} claims: {len(verdicts)} shown as SKIP (quick run: the claims are stated for the full-scale settings)"
    else:
        head = (f"{name} claims: {sum(v.holds for v in robust)} of {len(robust)} robust claims pass"
                + (f"; {sum(v.holds for v in ordering)} of {len(ordering)} reported claims (not robust) hold"
                   if ordering else "")
                + (f" ({note})" if note else ""))
    lines = [head]
    for v in verdicts:
        lines.append(f"  {status(v, quick):4s}  [{v.claim.kind}] {v.text}\n        {v.numbers}")
        if v.claim.basis:
            lines.append(f"        basis: {v.claim.basis}")
    return "\n".join(lines)
