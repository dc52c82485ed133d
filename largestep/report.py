"""Results as Markdown for a reader: what a notebook shows under its figures, and README's findings.

Every number here is printed from a results dict: the claims with their verdicts and the numbers behind them,
each run's divergence and collapse counts with their 95% intervals.  Notebooks render `what_to_look_at(results)`
right after the run they just did, so their prose cannot drift from their data; README's findings block is
`findings(...)` over the committed results files.
"""
from __future__ import annotations

from . import claims as claim_kinds
from .experiments import claims_for, family_module, scale_note
from .seeds import divergence_note


def run_lines(results: dict) -> list[str]:
    """'- label: 9 of 14 diverged (95% CI 39–86%)' for each stochastic run (the draws study: per draw)."""
    lines = []
    for run in results["runs"]:
        if run.get("deterministic"):
            continue
        lines.append(f"- {run['label']}: {divergence_note(run, interval=True)}")
    return lines


def claim_lines(results: dict, verdicts: list, robust_only: bool = False) -> list[str]:
    """One line per claim of `verdicts` (evaluated on `results`), robust ones first: verdict, kind, text and
    the numbers behind it."""
    quick = bool(results.get("quick"))
    return [f"- **{claim_kinds.status(v, quick)}** ({v.claim.kind}) {v.text}. <sub>{v.numbers}</sub>"
            for robust in ((True,) if robust_only else (True, False)) for v in verdicts if v.claim.robust == robust]


def what_to_look_at(results: dict, *others: dict) -> str:
    """A notebook's "What to look at", from the results it has just computed: what diverged or collapsed,
    the family's summary where it has one, and every claim with its verdict and numbers."""
    name = results["experiment"]
    head = f"### What to look at: `{name}`, from the run above"
    if results.get("quick"):
        head += ("\n\n*Quick run (shortened training): these numbers check the code, not the paper's claims; run "
                 "with `QUICK = False` for the full-scale result.*")
    note = scale_note(results)
    if note and not results.get("quick"):
        head += f"\n\n*{note[0].upper() + note[1:]}: the claims are stated for the paper's settings.*"
    parts = [head]
    own = getattr(family_module(results["family"]), "summary", None)
    if own is not None:
        parts.append(own(results))
    divergence = run_lines(results)
    if divergence and own is None:
        parts.append("**Seeds lost** (statistics are over the seeds that learned: conditioned on survival):\n"
                     + "\n".join(divergence))
    verdicts = claim_kinds.evaluate(results, claims_for(results), {o["experiment"]: o for o in others})
    claims = claim_lines(results, verdicts)
    if claims:
        parts.append("**Claims** (robust: must hold on any machine; reported: may flip with the seeds):\n"
                     + "\n".join(claims))
    return "\n\n".join(parts)


def findings(loaded: list[dict]) -> tuple[str, str]:
    """The findings over the results files, each file's claims evaluated once: (README's, docs/results.md's).
    README's: per file, its robust claims with their verdicts and numbers, and the claims reported, not robust,
    in one line of verdicts (read in five minutes); docs/results.md's: every claim with its numbers."""
    others = {r["experiment"]: r for r in loaded}
    short, full = [], []
    for results in loaded:
        verdicts = claim_kinds.evaluate(results, claims_for(results), others)
        if not verdicts:
            continue
        quick = bool(results.get("quick"))
        robust = [v for v in verdicts if v.claim.robust]
        note = " (quick run: shown for the code's sake, not the result)" if quick else ""
        head = (f"**`{results['experiment']}`**{note}: {sum(bool(v.holds) for v in robust)} of {len(robust)} robust "
                "claims pass")
        short += [head, *claim_lines(results, verdicts, robust_only=True)]
        reported = [f"{claim_kinds.status(v, quick)} {v.text}" for v in verdicts if not v.claim.robust]
        if reported:
            short.append("- reported, not robust: " + "; ".join(reported))
        full += [head, *claim_lines(results, verdicts)]
    return "\n".join(short), "\n".join(full)
