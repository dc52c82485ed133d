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


def claim_lines(results: dict, others: dict | None = None, numbers: bool = True, robust_only: bool = False) -> list[str]:
    """One line per claim, robust ones first: verdict, kind, text (and the numbers behind it)."""
    verdicts = claim_kinds.evaluate(results, claims_for(results), others or {})
    lines = []
    for robust in (True, False) if not robust_only else (True,):
        for v in (v for v in verdicts if v.claim.robust == robust):
            lines.append(f"- **{_status(v, results)}** ({v.claim.kind}) {v.text}"
                         + (f". <sub>{v.numbers}</sub>" if numbers else ""))
    return lines


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
    claims = claim_lines(results, {o["experiment"]: o for o in others})
    if claims:
        parts.append("**Claims** (robust: must hold on any machine; reported: may flip with the seeds):\n"
                     + "\n".join(claims))
    return "\n\n".join(parts)


def findings(loaded: list[dict], full: bool = True) -> str:
    """The findings over the results files: per file, its robust claims with their verdicts and numbers; with
    `full`, every other claim too, each with its numbers (docs/results.md); without, the claims that are
    reported, not robust, in one line per file, verdicts only (README, read in five minutes)."""
    others = {r["experiment"]: r for r in loaded}
    lines = []
    for results in loaded:
        verdicts = claim_kinds.evaluate(results, claims_for(results), others)
        if not verdicts:
            continue
        robust = [v for v in verdicts if v.claim.robust]
        passed = sum(bool(v.holds) for v in robust)
        quick = " (quick run: shown for the code's sake, not the result)" if results.get("quick") else ""
        lines.append(f"**`{results['experiment']}`**{quick}: {passed} of {len(robust)} robust claims pass")
        lines += claim_lines(results, others, robust_only=not full)
        if full:
            continue
        reported = [f"{_status(v, results)} {v.text}" for v in verdicts if not v.claim.robust]
        if reported:
            lines.append("- reported, not robust: " + "; ".join(reported))
    return "\n".join(lines)


def _status(verdict, results: dict) -> str:
    return ("n/a" if verdict.holds is None else "SKIP" if results.get("quick") else
            "PASS" if verdict.holds else "FAIL")
