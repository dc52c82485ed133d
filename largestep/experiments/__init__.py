"""The registry of the paper's experiments, in the order `reproduce` runs them.

An `Experiment` ties a default (full-scale) config to `run(config, n_seeds, progress) -> results` and
`figures(results) -> {file stem: matplotlib Figure}`.  Figures read the results dict alone, so they can
be redrawn from a results file.  An experiment may also write extra files (an animation) from its
results with `extras(results, out_dir) -> [paths]`.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Callable

# name -> module defining it (as a module-level Experiment called NAME); imported on first use.
_MODULES = {
    "stabilization_1d": "largestep.experiments.valley",
    "loss_surface": "largestep.experiments.valley",
    "diag_sgd": "largestep.experiments.diag",
    "diag_gd": "largestep.experiments.diag",
    "relu_1d": "largestep.experiments.relu",
    "relu_1d_overreg": "largestep.experiments.relu",
    "relu_two_layer": "largestep.experiments.relu",
    "relu_multi_layer": "largestep.experiments.relu",
    "relu_two_layer_draws": "largestep.experiments.data_draws",
    "relu_multi_layer_draws": "largestep.experiments.data_draws",
    "phase_diag": "largestep.experiments.phase",
    "phase_relu": "largestep.experiments.phase",
    "deep_mnist1d": "largestep.experiments.deep",
}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    config: Any  # the full-scale config; config.quick() is the CI-sized one
    run: Callable[..., dict]
    figures: Callable[[dict], dict]
    extras: Callable[[dict, Any], list] | None = None


def available() -> list[str]:
    """Names of the experiments whose module is present, in registry order."""
    names = []
    for name, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


# Run only when named (`reproduce deep_mnist1d`, `make deep-demo`): minutes of train.py processes.
ON_REQUEST = ("deep_mnist1d",)


def default_names() -> list[str]:
    """What `reproduce` runs when no experiment is named: every available one but those ON_REQUEST."""
    return [name for name in available() if name not in ON_REQUEST]


def get(name: str) -> Experiment:
    if name not in _MODULES:
        raise KeyError(name)
    return getattr(importlib.import_module(_MODULES[name]), name.upper())


def recorded_curves(results: dict) -> set:
    """The metrics whose curves any run of `results` records."""
    return {m for run in results.get("runs", []) for m in run.get("curves", {})}


# Figure families, first match wins: what a results dict must hold -> the function that draws it.  The
# choice reads the contents, never the experiment's name, so a renamed file or runs collected from
# elsewhere (deep_runs.collect_runs) draw as the experiment they resemble.
FIGURE_FAMILIES = (
    (lambda r: "phase" in r, "largestep.experiments.phase_figures", "figures"),
    (lambda r: "draws" in r, "largestep.experiments.data_draws", "figures"),
    (lambda r: "surface" in r, "largestep.experiments.valley_figures", "loss_surface_figures"),
    (lambda r: "stability_threshold" in r, "largestep.experiments.valley_figures", "stabilization_figures"),
    (lambda r: "l0_norm" in recorded_curves(r), "largestep.experiments.diag", "figures"),
    (lambda r: {"jacobian_rank", "train_loss"} <= recorded_curves(r), "largestep.experiments.relu_figures",
     "figures"),
    (lambda r: "test_err" in recorded_curves(r), "largestep.experiments.deep", "figures"),
)
# Extra files: what a results dict must hold -> the function that writes them from it.
EXTRAS = (
    (lambda r: bool(r.get("animation", {}).get("trajectories")), "largestep.experiments.valley_figures",
     "loss_surface_extras"),
)


def _first_match(table, results: dict):
    for holds, module, function in table:
        if holds(results):
            return getattr(importlib.import_module(module), function)
    return None


def figures_for(results: dict) -> Callable[[dict], dict] | None:
    """The figure function that draws `results` (by what it holds), or None when none does."""
    return _first_match(FIGURE_FAMILIES, results)


def extras_for(results: dict) -> Callable[..., list] | None:
    """The function writing `results`' extra files (the loss-surface animation), or None."""
    return _first_match(EXTRAS, results)


def save(results: dict, out_dir, with_json: bool = True) -> list:
    """Write `results` into out_dir as one set: NAME.json (unless with_json=False) and every figure (PNG, PDF)
    and extra file its family draws, replacing earlier files of the same names together or not at all.

    The one library entry for writing results (`reproduce`, `draw`, the deep sweep's --collect).  Returns the
    paths written; OSError when out_dir cannot take them (its earlier files then stay as they were), ValueError
    when nothing in this package draws the results.
    """
    from pathlib import Path

    import matplotlib.pyplot as plt

    from ..plotting import save_formats
    from ..results import inside, save_json, written_together

    figures, extras = figures_for(results), extras_for(results)
    if figures is None:
        raise ValueError(f"the results hold none of the curves this package's figures draw (runs record: "
                         f"{', '.join(sorted(recorded_curves(results))) or 'nothing'})")
    out_dir, name = Path(out_dir), results["experiment"]
    with written_together(out_dir, name) as staging:
        written = [save_json(results, inside(staging, f"{name}.json"))] if with_json else []
        for stem, fig in figures(results).items():
            written += save_formats(fig, inside(staging, stem))
            plt.close(fig)
        if extras is not None:
            written += [Path(p) for p in extras(results, staging)]
    return [out_dir / p.name for p in written]


def memory_needed(config, n_seeds: int) -> int:
    """A lower bound on the bytes the largest training round allocates, from the fields experiments share.

    Each trained row (a run and seed) holds its step sizes and SGD sample stream, 8 bytes per iteration
    each, and a few float64 curves on the evaluation grid; loss_surface adds its grid of losses
    (grid_points^2 points, each an n-vector of residuals).
    """
    runs = len(config.runs) + len(getattr(config, "animation_runs", ()))
    grid = getattr(config, "grid_early", 0) + getattr(config, "grid_spaced", 0)
    per_row = 8 * (2 * config.iterations + 4 * grid)
    surface = 8 * getattr(config, "grid_points", 0) ** 2 * getattr(config, "n", 0)
    return runs * n_seeds * per_row + surface


def check_memory(config, n_seeds: int) -> None:
    """ConfigError when the config (with n_seeds seeds) could not fit in this machine's memory."""
    from ..config import ConfigError

    if hasattr(config, "trained_config"):  # a study (data draws, phase maps) trains a base experiment's config
        config, n_seeds = config.trained_config(n_seeds)
    if not hasattr(config, "iterations"):  # deep_mnist1d: each train.py process holds one run
        return
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    need = memory_needed(config, n_seeds)
    if need > total:
        raise ConfigError(f"iterations={config.iterations:,} with {n_seeds} seed(s) per run would need at least "
                          f"{need / 2**30:,.1f} GiB of memory, more than this machine's {total / 2**30:.1f} GiB: "
                          "lower iterations, the grid sizes or --seeds")


def run_experiment(experiment: Experiment, config=None, n_seeds: int = 5, quick: bool = False,
                   progress: bool = True) -> dict:
    """Validate, run with a progress bar, and return the complete results dict (as written to JSON).

    The one entry point shared by `reproduce` and the notebooks.  config defaults to the experiment's
    full-scale config (its quick() version when quick=True).
    """
    import time

    from ..config import to_dict
    from ..results import provenance
    from ..sweep import BatchProgress

    if config is None:
        config = experiment.config.quick() if quick else experiment.config
    config.validate()
    check_memory(config, n_seeds)
    start = time.perf_counter()
    bar = BatchProgress(experiment.name, enabled=progress)
    try:
        results = experiment.run(config, n_seeds=n_seeds, progress=bar)
    finally:
        bar.close()
    results = {"experiment": experiment.name, "quick": bool(quick), **results, "config": to_dict(config),
               "provenance": provenance()}
    results.setdefault("seconds", {})["total"] = time.perf_counter() - start
    return results


def summary(results: dict) -> str:
    """One line per run: each final metric's median [min, max] over surviving seeds, and what diverged
    (medians, as the figures and claims: a mean follows the worst seed of a quantity spread over decades)."""
    import numpy as np

    from ..sweep import divergence_note

    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in results.get("seconds", {}).items())
    lines = [f"{results['experiment']}{' (quick)' if results.get('quick') else ''}: {seconds}; median [min, max] "
             "over surviving seeds"]
    if "phase" in results:  # a map of many cells: where each metric is lowest, and the divergence boundary
        from .phase import headline
        tried = sum(run["seeds_tried"] for run in results["runs"])
        diverged = sum(run["seeds_diverged"] for run in results["runs"])
        return "\n".join(lines + [f"  {len(results['runs'])} cells, {tried} seeds tried, {diverged} diverged; "
                                   f"{headline(results)}"])
    for run in results["runs"]:
        alive = [s for s in run["final_per_seed"] if not s["diverged"]]
        parts = []
        for key in run["final"]:
            values = [s[key] for s in alive if s.get(key) is not None]
            if not values:
                continue
            spread = f" [{min(values):.3g}, {max(values):.3g}]" if len(values) > 1 else ""
            parts.append(f"{key}={np.median(values):.4g}{spread}")
        lines.append(f"  {run['label']}: {', '.join(parts) or 'no surviving seed'}  "
                     f"({divergence_note(run, results.get('n_seeds'))})")
    return "\n".join(lines)


def per_seed_table(results: dict, metric: str) -> str:
    """Final `metric` of every seed (rows) in every run (columns), for paired comparisons across runs.

    Runs of one experiment share training seeds (seed s draws the same SGD sampling order in every run),
    so reading a row compares schedules on the same noise; '-' marks a seed the run did not reach or
    that diverged ('div').
    """
    runs = results["runs"]
    seeds = sorted({s["seed"] for run in runs for s in run["final_per_seed"]})
    width = max(10, *(len(run["label"]) for run in runs))
    lines = [f"{metric} at the end of training", "seed " + "".join(f"{run['label']:>{width + 2}}" for run in runs)]
    for seed in seeds:
        cells = []
        for run in runs:
            entry = next((s for s in run["final_per_seed"] if s["seed"] == seed), None)
            value = "-" if entry is None else "div" if entry["diverged"] else f"{entry[metric]:.4g}"
            cells.append(f"{value:>{width + 2}}")
        lines.append(f"{seed:<5d}" + "".join(cells))
    return "\n".join(lines)
