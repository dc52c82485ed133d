"""README's table of figures, printed from the results files, so that its numbers cannot drift from them.

`python -m largestep table [DIR]` prints one row per results file in DIR (default images/): the experiment,
its notebook, the headline metrics (median over surviving seeds, one value per run in the config's order),
what diverged, and the time the experiment took.  `--write README.md` replaces the table between the
markers in README.md; a test fails when README's table and the committed results disagree.
"""
from __future__ import annotations

from pathlib import Path

BEGIN, END = "<!-- table of figures: begin (python -m largestep table --write README.md) -->", \
    "<!-- table of figures: end -->"

# experiment -> (notebook, headline metrics)
HEADLINES = {
    "diag_sgd": ("diag_nets.ipynb", ["l0_norm", "jacobian_rank", "test_loss"]),
    "diag_gd": ("diag_nets.ipynb", ["test_loss", "l0_norm"]),
    "stabilization_1d": ("diag_nets_2d_loss_surface.ipynb", ["loss_min_last_half", "loss_max_last_half"]),
    "loss_surface": ("diag_nets_2d_loss_surface.ipynb", ["test_loss", "distance_to_w_star"]),
    "relu_1d": ("fc_nets_1d_regression.ipynb", ["jacobian_rank", "feature_sparsity", "train_loss"]),
    "relu_1d_overreg": ("fc_nets_1d_regression.ipynb", ["jacobian_rank", "feature_sparsity", "train_loss"]),
    "relu_two_layer": ("fc_nets_two_layer.ipynb", ["test_loss", "feature_sparsity", "jacobian_rank"]),
    "relu_multi_layer": ("fc_nets_multi_layer.ipynb",
                         ["test_loss", "feature_sparsity_layer1", "feature_sparsity_layer2"]),
    "relu_two_layer_draws": ("fc_nets_two_layer.ipynb", []),
    "relu_multi_layer_draws": ("fc_nets_multi_layer.ipynb", []),
    "phase_diag": ("phase_diagrams.ipynb", []),
    "phase_relu": ("phase_diagrams.ipynb", []),
    "deep_mnist1d": ("deep_nets/plot_feature_sparsity.ipynb", ["test_err", "feature_sparsity_block4"]),
}
NAMES = {"l0_norm": "ℓ0 of β", "jacobian_rank": "Jacobian rank", "test_loss": "test loss", "train_loss": "train loss",
         "loss_min_last_half": "min loss over the 2nd half", "loss_max_last_half": "max loss over the 2nd half",
         "distance_to_w_star": "distance to w*", "feature_sparsity": "feature sparsity",
         "feature_sparsity_layer1": "layer-1 sparsity", "feature_sparsity_layer2": "layer-2 sparsity",
         "test_err": "test error", "feature_sparsity_block4": "block-4 sparsity"}


def _number(value) -> str:
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
    name = results["experiment"]
    if "phase" in results:
        from .experiments.phase import headline as phase_headline
        return phase_headline(results)
    parts = []
    for metric in HEADLINES.get(name, ("", []))[1]:
        values = [run.get("final_median", {}).get(metric) for run in results["runs"]]
        parts.append(f"{NAMES.get(metric, metric)} {' / '.join(_number(v) for v in values)}")
    if "draws" in results:
        from .experiments.data_draws import claim_counts

        untestable = sum(not d["testable"] for d in results["draws"])
        parts += [f"{holds} of {testable} draws: {claim}" for claim, holds, testable in claim_counts(results)]
        if untestable:
            parts.append(f"{untestable} of {len(results['draws'])} draws untestable (a run had no surviving seed)")
    diverged = [f"{run['seeds_diverged']} of {run['seeds_tried']}" for run in results["runs"]
                if not run.get("deterministic") and "draws" not in results]
    if any(not d.startswith("0 of") for d in diverged):
        parts.append("seeds diverged per run: " + ", ".join(diverged))
    return "; ".join(parts)


def table(directory="images") -> str:
    """The markdown table of every results file in `directory` that README lists, in registry order."""
    from .experiments import available
    from .results import load_results

    directory = Path(directory)
    lines = ["| experiment | notebook | runs (in order) | medians over surviving seeds | time |",
             "|---|---|---|---|---|"]
    for name in available():
        path = directory / f"{name}.json"
        if name not in HEADLINES or not path.exists():
            continue
        results = load_results(path)
        runs = " / ".join(run.get("schedule_label", run["label"]) for run in results["runs"]
                          if "draws" not in results or run["data_seed"] == results["draws"][0]["data_seed"])
        if "phase" in results:
            from .experiments.phase import grid_description
            runs = grid_description(results)
        seconds = results.get("seconds", {}).get("total")
        time = "" if seconds is None else f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
        if results.get("runs_reused"):  # a rerun that read finished run directories instead of training them
            time += f" ({results['runs_reused']} of {results['runs_reused'] + results['runs_trained']} runs reused)"
        lines.append(f"| `{name}` | `{HEADLINES[name][0]}` | {runs} | {headline(results)} | {time} |")
    return "\n".join(lines)


def replace_in(text: str, new_table: str) -> str:
    """`text` with the block between README's markers replaced by `new_table`."""
    if BEGIN not in text or END not in text:
        raise ValueError("README has no table markers: add the two marker lines where the table goes")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{new_table}\n{END}{tail}"


def block_in(text: str) -> str:
    """The table currently between README's markers."""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n")
