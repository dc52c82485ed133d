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


def claim_lines(results: dict, others: dict | None = None, numbers: bool = True) -> list[str]:
    """One line per claim, robust ones first: verdict, kind, text (and the numbers behind it)."""
    verdicts = claim_kinds.evaluate(results, claims_for(results), others or {})
    quick = bool(results.get("quick"))
    lines = []
    for robust in (True, False):
        for v in (v for v in verdicts if v.claim.robust == robust):
            status = "n/a" if v.holds is None else "SKIP" if quick else "PASS" if v.holds else "FAIL"
            lines.append(f"- **{status}** ({v.claim.kind}) {v.text}" + (f". <sub>{v.numbers}</sub>" if numbers else ""))
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


def findings(loaded: list[dict]) -> str:
    """README's findings: per results file, every claim with its verdict and numbers, robust ones first."""
    others = {r["experiment"]: r for r in loaded}
    lines = []
    for results in loaded:
        claims = claim_lines(results, others)
        if not claims:
            continue
        robust = [line for line in claims if "(robust)" in line]
        passed = sum("**PASS**" in line for line in robust)
        quick = " (quick run: shown for the code's sake, not the result)" if results.get("quick") else ""
        lines.append(f"**`{results['experiment']}`**{quick}: {passed} of {len(robust)} robust claims pass")
        lines += claims
    return "\n".join(lines)
