"""What each experiment's results must show, as data: claims checked on a results record alone.

A claim is *robust* when it must hold on any machine: its margin is wide against the spread over seeds and
against which seeds diverge (at the edge of divergence the last bits of a sum decide that, so the surviving
seeds differ between CPUs).  The paper's orderings whose seed ranges overlap are kept too, marked "paper's
ordering, reported, not robust": another machine may flip them.  Statistics are over surviving seeds:
medians with [min, max], and paired counts over the seeds that survived in both runs (runs of one experiment
share training seeds: the same initialization and sampling order).

Runs are named by their index in the results' run list (the experiment's config order).
`python -m largestep check [NAME | RESULTS.json ...]` prints every claim as PASS/FAIL with its numbers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

NOT_ROBUST = "paper's ordering, reported, not robust"
# A seed "underfits" (stalls) when its final train loss stays above this (the 1-D labels' variance is ~1.4).
UNDERFIT_LOSS = 0.01


@dataclass(frozen=True)
class Claim:
    text: str
    robust: bool
    check: Callable[[dict, dict], tuple[bool, str]]  # (results, other experiments' results by name) -> (holds, numbers)
    needs: str | None = None  # another experiment whose results the check compares with


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    holds: bool | None  # None: not evaluated (the results it compares with are missing)
    numbers: str


# ---- statistics over surviving seeds


def final_values(run: dict, metric: str) -> np.ndarray:
    """The final `metric` of every surviving seed of a run."""
    values = np.array([r[metric] for r in run["final_per_seed"] if not r["diverged"] and r.get(metric) is not None],
                      dtype=float)
    return values[~np.isnan(values)]  # NaN (None in a raw JSON file): not measured


def median(run: dict, metric: str) -> float:
    values = final_values(run, metric)
    return float(np.median(values)) if values.size else np.nan


def spread(run: dict, metric: str, fmt: str = ".3g") -> str:
    """'median [min, max]' over surviving seeds, with the run's label."""
    v = final_values(run, metric)
    numbers = f"{np.median(v):{fmt}} [{v.min():{fmt}}, {v.max():{fmt}}]" if v.size else "no survivor"
    return f"{run['label']}: {numbers}"


def paired_below(a: dict, b: dict, metric: str) -> tuple[int, int]:
    """Seeds that survived in both runs: how many have a's final metric below b's, out of how many."""
    fa = {r["seed"]: r[metric] for r in a["final_per_seed"] if not r["diverged"]}
    fb = {r["seed"]: r[metric] for r in b["final_per_seed"] if not r["diverged"]}
    shared = sorted(set(fa) & set(fb))
    return sum(fa[s] < fb[s] for s in shared), len(shared)


# ---- claim kinds: each returns a check(results, others) -> (holds, numbers)


def median_below(metric: str, a: int, b: int, fmt: str = ".3g"):
    """Run a's median final metric is below run b's."""
    def check(results, others):
        ra, rb = results["runs"][a], results["runs"][b]
        k, n = paired_below(ra, rb, metric)
        return (bool(median(ra, metric) < median(rb, metric)),
                f"{spread(ra, metric, fmt)} vs {spread(rb, metric, fmt)}; paired seeds lower: {k}/{n}")
    return check


def medians_below(metric: str, runs: list[int], reference: int, fmt: str = ".3g"):
    """Each of `runs` has a lower median final metric than run `reference`."""
    def check(results, others):
        ref = results["runs"][reference]
        chosen = [results["runs"][i] for i in runs]
        pairs = [paired_below(r, ref, metric) for r in chosen]
        return (all(median(r, metric) < median(ref, metric) for r in chosen),
                "; ".join(spread(r, metric, fmt) for r in [ref, *chosen])
                + "; paired seeds lower: " + ", ".join(f"{k}/{n}" for k, n in pairs))
    return check


def medians_fall(metric: str, runs: list[int], fmt: str = ".3g"):
    """Medians strictly decrease along `runs`; the numbers say whether seed ranges overlap and how many
    seeds (surviving in all of them) show the full ordering."""
    def check(results, others):
        chosen = [results["runs"][i] for i in runs]
        meds = [median(r, metric) for r in chosen]
        values = [final_values(r, metric) for r in chosen]
        overlap = any(x.min() <= y.max() for x, y in zip(values, values[1:]) if x.size and y.size)
        per_seed = [{s["seed"]: s[metric] for s in r["final_per_seed"] if not s["diverged"]} for r in chosen]
        shared = sorted(set.intersection(*(set(p) for p in per_seed)))
        ordered = sum(all(x[s] > y[s] for x, y in zip(per_seed, per_seed[1:])) for s in shared)
        return (all(x > y for x, y in zip(meds, meds[1:])),
                "; ".join(spread(r, metric, fmt) for r in chosen)
                + ("; the seed ranges overlap" if overlap else "; the seed ranges are disjoint")
                + f"; seeds with the full ordering: {ordered}/{len(shared)}")
    return check


def seeds_below(metric: str, a: int | list[int], b: int | list[int], factor: float = 1.0, fmt: str = ".3g"):
    """Every surviving seed of the run(s) a ends at least `factor` times below every surviving seed of the
    run(s) b (deterministic runs count as one seed)."""
    a_runs, b_runs = ([a] if isinstance(a, int) else a), ([b] if isinstance(b, int) else b)

    def check(results, others):
        ra = [results["runs"][i] for i in a_runs]
        rb = [results["runs"][i] for i in b_runs]
        va = np.concatenate([final_values(r, metric) for r in ra])
        vb = np.concatenate([final_values(r, metric) for r in rb])
        holds = bool(va.size and vb.size and factor * va.max() < vb.min())
        worst = f"highest {va.max():{fmt}} vs lowest {vb.min():{fmt}}" if va.size and vb.size else "a run has no survivor"
        return holds, worst + " (" + "; ".join(spread(r, metric, fmt) for r in ra + rb) + ")"
    return check


def every_seed_within(metric: str, run: int, low: float | str = -np.inf, high: float = np.inf, fmt: str = ".3g"):
    """Every surviving seed of the run ends with low <= metric <= high (and at least one survived); a bound
    given as a string is that field of the results' config."""
    def check(results, others):
        nonlocal low
        low = results["config"][low] if isinstance(low, str) else low
        r = results["runs"][run]
        v = final_values(r, metric)
        outside = [s["seed"] for s in r["final_per_seed"]
                   if not s["diverged"] and not low <= s[metric] <= high]
        return (bool(v.size) and not outside,
                f"{spread(r, metric, fmt)}; {r['seeds_tried'] - r['seeds_diverged']} surviving seeds, outside: "
                f"{outside or 'none'}")
    return check


def median_at_most(metric: str, run: int, high: float):
    """The run's median final metric is below `high`; the numbers list the seeds above it."""
    def check(results, others):
        r = results["runs"][run]
        v = final_values(r, metric)
        above = [s["seed"] for s in r["final_per_seed"] if not s["diverged"] and s[metric] > high]
        return (bool(v.size) and bool(np.median(v) < high),
                f"{spread(r, metric, '.2g')}; seeds above {high:g}: {len(above)} of {v.size} {above}")
    return check


def all_of(*checks):
    def check(results, others):
        outcomes = [c(results, others) for c in checks]
        return all(holds for holds, _ in outcomes), "; ".join(numbers for _, numbers in outcomes)
    return check


def every_seed_diverges(run: int):
    def check(results, others):
        r = results["runs"][run]
        at = r.get("diverged_at") or []
        when = f", all by iteration {max(at)}" if at else ""
        return (r["seeds_tried"] > 0 and r["seeds_diverged"] == r["seeds_tried"],
                f"{r['label']}: {r['seeds_diverged']} of {r['seeds_tried']} diverged{when}")
    return check


def median_below_other(metric: str, run: int, other: str, other_run: int):
    """Run `run`'s median is below run `other_run` of another experiment's results (paired by seed)."""
    def check(results, others):
        ra, rb = results["runs"][run], others[other]["runs"][other_run]
        k, n = paired_below(ra, rb, metric)
        return (bool(median(ra, metric) < median(rb, metric)),
                f"{spread(ra, metric)} vs {other} {spread(rb, metric)}; paired seeds lower: {k}/{n}")
    return check


# ---- the claims of each experiment (run indices in config order)

DIAG_SGD = [  # runs: constant η=0.25; η=0.282 decayed at 10%, 30%, 50%
    Claim("the constant run keeps every coordinate: ℓ0 of β = d in every surviving seed", True,
          every_seed_within("l0_norm", 0, low="d", fmt=".4g")),
    Claim("the longer the large-step phase, the sparser β: median ℓ0 falls from the 10% to the 30% to the 50% decay",
          True, medians_fall("l0_norm", [1, 2, 3], ".4g")),
    Claim("every decayed run is sparser (median ℓ0) than the constant run", True,
          medians_below("l0_norm", [1, 2, 3], 0, ".4g")),
    Claim("the Jacobian rank (median) falls from the constant run to the 10%, 30% and 50% decays", True,
          medians_fall("jacobian_rank", [0, 1, 2, 3], ".4g")),
    Claim("the constant run ends with a higher test loss than every decayed run, in every seed", True,
          seeds_below("test_loss", [1, 2, 3], 0)),
    Claim("test loss falls with the decay point: median 10% > 30% > 50%", False,
          medians_fall("test_loss", [1, 2, 3])),
]

DIAG_GD = [  # runs: GD η=2; GD η=3.53 decayed at 10%, 30%, 50%; SGD η=0.266 ÷20 at 50%
    Claim("GD with large steps gains nothing: every η=3.53 GD run ends with a higher test loss than GD η=2",
          True, seeds_below("test_loss", 0, [1, 2, 3])),
    Claim("every surviving SGD seed ends sparser (ℓ0 of β) than every GD run", True,
          seeds_below("l0_norm", 4, [0, 1, 2, 3], fmt=".4g")),
    Claim("every surviving SGD seed ends with a lower test loss than every GD run", True,
          seeds_below("test_loss", 4, [0, 1, 2, 3])),
]

STABILIZATION_1D = [  # runs: η=0.8 (below the threshold), 1.02 (inside the interval), 2 (diverges), 1.3
    Claim("below the threshold the loss converges: η=0.8 ends below 1e-20 in every seed", True,
          every_seed_within("loss_max_last_half", 0, high=1e-20)),
    Claim("inside the interval the loss stays in a band: over the second half, every seed's loss stays "
          "within [1e-3, 1]", True,
          all_of(every_seed_within("loss_min_last_half", 1, low=1e-3),
                 every_seed_within("loss_max_last_half", 1, high=1.0))),
    Claim("too large a step diverges: η=2 diverges in every seed tried", True, every_seed_diverges(2)),
    Claim("past the interval the loss leaves the band: η=1.3 survives but dips below 1e-6 in every seed", True,
          every_seed_within("loss_min_last_half", 3, high=1e-6)),
]

LOSS_SURFACE = [  # runs: gradient flow; GD η=3 ÷3 at 50%; SGD η=0.6 ÷3 at 50%
    Claim("SGD ends at least 5x closer to w* than gradient flow, in every surviving seed", True,
          seeds_below("distance_to_w_star", 2, 0, factor=5)),
    Claim("SGD's test loss is at least 100x below gradient flow's, in every surviving seed", True,
          seeds_below("test_loss", 2, 0, factor=100)),
    Claim("GD with large steps reaches a lower train loss than gradient flow", True,
          seeds_below("train_loss", 1, 0)),
    Claim("... but a higher test loss than gradient flow", True, seeds_below("test_loss", 0, 1)),
    Claim("gradient flow stops away from w*: distance to w* above 0.5", True,
          every_seed_within("distance_to_w_star", 0, low=0.5)),
]


def _relu_1d(overreg: bool) -> list[Claim]:  # runs: large-step phase of 2%, of 50%
    claims = [Claim(f"the 50% run ends with lower median {m} than the 2% run", True, median_below(m, 1, 0))
              for m in ("jacobian_rank", "feature_sparsity")]
    claims += [Claim(f"the {phase} run fits the data (median train loss < {UNDERFIT_LOSS:g})", True,
                     median_at_most("train_loss", i, UNDERFIT_LOSS)) for i, phase in ((0, "2%"), (1, "50%"))]
    if overreg:
        claims.append(Claim("the overreg 50% run ends sparser (median) than relu_1d's 50% run", False,
                            median_below_other("feature_sparsity", 1, "relu_1d", 1), needs="relu_1d"))
    return claims


def _relu_teacher_student(sparsity: list[str], rank_robust: bool) -> list[Claim]:  # runs: small step; large step decayed at 10/30/50%
    claims = []
    for m in sparsity:
        claims.append(Claim(f"every large-step run ends with lower median {m} than the small step", True,
                            medians_below(m, [1, 2, 3], 0)))
        claims.append(Claim(f"the 50% run is sparser ({m}, median) than the 10% run", False, median_below(m, 3, 1)))
    claims += [
        Claim("every large-step run ends with lower median test loss than the small step", False,
              medians_below("test_loss", [1, 2, 3], 0)),
        Claim("the Jacobian rank (median) is lower at 50% than for the small step", rank_robust,
              median_below("jacobian_rank", 3, 0, ".0f")),
        Claim("median test loss falls monotonically with the decay point (10% > 30% > 50%)", False,
              medians_fall("test_loss", [1, 2, 3])),
    ]
    return claims


DEEP_MNIST1D = [  # runs: small constant step; the paper's piecewise_0X (10/30/50%); the control step_0X (10/30%)
    Claim("every large-step run ends with a lower test error than the small constant step, in every seed", True,
          seeds_below("test_err", [1, 2, 3, 4, 5], 0)),
    *(Claim(f"every large-step run ends with sparser block-{b} features than the small step, in every seed", True,
            seeds_below(f"feature_sparsity_block{b}", [1, 2, 3, 4, 5], 0)) for b in (2, 3, 4, 5)),
    Claim("control (equal ÷10 decays): a 30% large-step phase ends with sparser block-4 features than a 10% one, "
          "in every seed", True, seeds_below("feature_sparsity_block4", 5, 4)),
    Claim("control: block-4 sparsity falls with the length of the large-step phase, 10% > 30% > 50% (median)", False,
          medians_fall("feature_sparsity_block4", [4, 5, 3])),
    Claim("the paper's schedules: test error falls with the decay point, 10% > 30% > 50% (median)", False,
          medians_fall("test_err", [1, 2, 3])),
    Claim("control: test error falls with the length of the large-step phase, 10% > 30% > 50% (median)", False,
          medians_fall("test_err", [4, 5, 3])),
]


from .experiments import phase_claims as _phase_claims  # noqa: E402  (it builds on the kinds above)

CLAIMS: dict[str, list[Claim]] = {
    "stabilization_1d": STABILIZATION_1D,
    "loss_surface": LOSS_SURFACE,
    "diag_sgd": DIAG_SGD,
    "diag_gd": DIAG_GD,
    "relu_1d": _relu_1d(overreg=False),
    "relu_1d_overreg": _relu_1d(overreg=True),
    "relu_two_layer": _relu_teacher_student(["feature_sparsity"], rank_robust=True),  # 10 [8, 11] vs 23 [20, 33]
    # the multi-layer ranks overlap (105 [96, 144] vs 142 [129, 147]): reported, not robust
    "relu_multi_layer": _relu_teacher_student(["feature_sparsity_layer1", "feature_sparsity_layer2"], rank_robust=False),
    "deep_mnist1d": DEEP_MNIST1D,
    "phase_diag": _phase_claims.PHASE_DIAG,
    "phase_relu": _phase_claims.PHASE_RELU,
}


def evaluate(results: dict, others: dict | None = None) -> list[Verdict]:
    """Every claim of the results' experiment; others: other experiments' results by name (for claims that
    compare with them; a claim whose reference is missing is reported as not evaluated)."""
    others = others or {}
    verdicts = []
    for claim in CLAIMS.get(results["experiment"], []):
        if claim.needs and claim.needs not in others:
            verdicts.append(Verdict(claim, None, f"not evaluated: needs {claim.needs}'s results"))
            continue
        holds, numbers = claim.check(results, others)
        verdicts.append(Verdict(claim, bool(holds), numbers))
    return verdicts


def robust_failures(verdicts: list[Verdict]) -> int:
    return sum(v.claim.robust and v.holds is False for v in verdicts)


def report(results: dict, others: dict | None = None, note: str = "") -> str:
    """The claims as printed by `check` and at the end of `reproduce`: PASS/FAIL, robust or not, numbers."""
    if results["experiment"] not in CLAIMS:
        return f"{results['experiment']}: no claims stated for this experiment"
    verdicts = evaluate(results, others)
    robust = [v for v in verdicts if v.claim.robust and v.holds is not None]
    ordering = [v for v in verdicts if not v.claim.robust and v.holds is not None]
    head = (f"{results['experiment']} claims: {sum(v.holds for v in robust)} of {len(robust)} robust claims pass"
            + (f"; {sum(v.holds for v in ordering)} of {len(ordering)} of the paper's orderings hold" if ordering else "")
            + (f" ({note})" if note else ""))
    lines = [head]
    for v in verdicts:
        status = "n/a " if v.holds is None else "PASS" if v.holds else "FAIL"
        kind = "robust" if v.claim.robust else NOT_ROBUST
        lines.append(f"  {status}  [{kind}] {v.claim.text}\n        {v.numbers}")
    return "\n".join(lines)


def print_claims(results: dict, *others: dict) -> None:
    """Print the claims of `results`; pass the results of experiments it compares with (relu_1d for
    relu_1d_overreg) as further arguments."""
    print(report(results, {o["experiment"]: o for o in others}))


def scale_note(results: dict) -> str:
    """Why claims may fail for reasons other than the science: a quick run or an edited config."""
    from .config import to_dict
    from .experiments import get

    if results.get("quick"):
        return "quick run: the claims are stated for the full-scale settings"
    try:
        default = to_dict(get(results["experiment"]).config)
    except KeyError:
        return ""
    return "" if results.get("config") == default else "config differs from the paper's settings"
