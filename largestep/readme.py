"""The generated blocks of README.md and docs/results.md, printed from the results files, so that no number in
them can drift from the data.

- the findings (README): per experiment, its robust claims with their verdicts and numbers, and one line with
  the verdicts of the claims reported, not robust;
- the table of figures (docs/results.md): one row per results file (the experiment, its notebook, the headline
  metrics as medians over surviving seeds, one value per run, what diverged with its interval, its time);
- all findings (docs/results.md): every claim with its verdict and the numbers behind it.

`python -m largestep table [--dir DIR]` prints them; `--write README.md docs/results.md` replaces each block
between its markers in the files that hold them; a test fails when a block and the committed results disagree.
"""
from __future__ import annotations

from pathlib import Path

MARKERS = {
    "table": ("<!-- table of figures: begin (python -m largestep table --write docs/results.md) -->",
              "<!-- table of figures: end -->"),
    "findings": ("<!-- findings: begin (python -m largestep table --write README.md) -->",
                 "<!-- findings: end -->"),
    "all findings": ("<!-- all findings: begin (python -m largestep table --write docs/results.md) -->",
                     "<!-- all findings: end -->"),
}
NAMES = {"l0_norm": "ℓ0 of β", "jacobian_rank": "Jacobian rank", "test_loss": "test loss", "train_loss": "train loss",
         "loss_min_last_half": "min loss over the 2nd half", "loss_max_last_half": "max loss over the 2nd half",
         "distance_to_w_star": "distance to w*", "feature_sparsity": "feature sparsity",
         "feature_sparsity_layer1": "layer-1 sparsity", "feature_sparsity_layer2": "layer-2 sparsity",
         "test_err": "test error", "feature_sparsity_block4": "block-4 sparsity"}


def number(value) -> str:
    """A measured value as README prints it: whole numbers plain, small ones as 1.2e-5, others 3 digits."""
    if value is None or value != value:  # not measured (NaN, or None in a raw JSON file)
        return "–"
    if float(value).is_integer() and abs(value) < 1e4:
        return f"{value:.0f}"
    if value != 0 and abs(value) < 1e-2:
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:.3g}"


def headline(results: dict) -> str:
    """The row's numbers: each headline metric's median per run ('/' between runs), then what diverged."""
    from .experiments import FAMILY, family_module, get
    from .seeds import divergence_note

    own = getattr(family_module(results["family"]), "headline", None)
    if own is not None:
        return own(results)
    metrics = get(results["experiment"]).headline if results["experiment"] in FAMILY else ()
    parts = [f"{NAMES.get(m, m)} {' / '.join(number(run['final_median'].get(m)) for run in results['runs'])}"
             for m in metrics]
    stochastic = [run for run in results["runs"] if not run.get("deterministic")]
    if any(run["seeds_diverged"] for run in stochastic):
        parts.append("diverged per run: " + ", ".join(divergence_note(run, interval=True) for run in stochastic))
    return "; ".join(parts)


def _results(directory) -> list[dict]:
    """Every registered experiment's results file in `directory`, in registry order, schema-checked."""
    from .experiments import available, load

    directory = Path(directory)
    return [load(directory / f"{name}.json") for name in available() if (directory / f"{name}.json").is_file()]


def table(loaded: list[dict]) -> str:
    """The markdown table of the results files, in registry order."""
    from .experiments import get

    lines = ["| experiment | notebook | runs (in order) | medians over surviving seeds | time |",
             "|---|---|---|---|---|"]
    from .experiments import family_module

    for results in loaded:
        name = results["experiment"]
        describe = getattr(family_module(results["family"]), "runs_description", None)
        runs = describe(results) if describe else " / ".join(
            dict.fromkeys(run.get("schedule_label", run["label"]) for run in results["runs"]))
        seconds = results.get("seconds", {}).get("total")
        time = "" if seconds is None else f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
        if results.get("runs_reused"):  # a rerun that read finished run directories instead of training them
            time += f" ({results['runs_reused']} of {results['runs_reused'] + results['runs_trained']} runs reused)"
        lines.append(f"| `{name}` | `{get(name).notebook}` | {runs} | {headline(results)} | {time} |")
    return "\n".join(lines)


def blocks(directory="images") -> dict[str, str]:
    from .report import findings

    loaded = _results(directory)
    short, full = findings(loaded)
    return {"findings": short, "table": table(loaded), "all findings": full}


def held(text: str) -> list[str]:
    """The blocks whose two markers `text` holds."""
    return [name for name, (begin, end) in MARKERS.items() if begin in text and end in text]


def replace_blocks(text: str, new: dict[str, str]) -> str:
    """`text` with each block it holds replaced between its markers."""
    if not held(text):
        raise ValueError("it holds no block's markers: add the two marker lines where a block goes, e.g. "
                         + " ... ".join(MARKERS["findings"]))
    for name in held(text):
        body = new[name]
        begin, end = MARKERS[name]
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{begin}\n{body}\n{end}{tail}"
    return text


def block_in(text: str, name: str) -> str:
    """The block currently between README's markers."""
    begin, end = MARKERS[name]
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")
