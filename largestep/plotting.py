"""Shared figure pieces: one colour per run, mean over surviving seeds with a min-max band, decay lines.

Every experiment's figure is built from its results dict alone (see experiments/), through these.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .sweep import divergence_note

STYLE = {
    "text.usetex": False,  # mathtext: no LaTeX install needed
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.fontsize": 8,
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "savefig.bbox": "tight",
}


def run_colors(n: int) -> list:
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def as_array(curve) -> np.ndarray:
    """A curve from a results file (lists with nulls) as a float array with NaNs."""
    return np.array([[np.nan if v is None else v for v in row] for row in curve], dtype=float) \
        if len(curve) and isinstance(curve[0], (list, tuple, np.ndarray)) else \
        np.array([np.nan if v is None else v for v in curve], dtype=float)


def run_label(run: dict) -> str:
    return f"{run['label']} ({divergence_note(run)})"


def plot_metric(ax, results: dict, metric: str, *, log: bool = False, title: str | None = None,
                ylim=None, decay_lines: bool = True, legend: bool = False) -> None:
    """Mean over surviving seeds (line) and min-max over them (band) of `metric`, one colour per run."""
    colors = run_colors(len(results["runs"]))
    drawn = []
    for run, color in zip(results["runs"], colors):
        iteration = np.asarray(run["curves"]["iteration"], dtype=float)
        values = as_array(run["curves"].get(metric, []))
        drawn.append(values[np.isfinite(values)])
        if values.size:
            values = np.atleast_2d(values)
            ax.plot(iteration, np.nanmean(values, 0), color=color, lw=1.5, label=run_label(run))
            if len(values) > 1:
                ax.fill_between(iteration, np.nanmin(values, 0), np.nanmax(values, 0), color=color,
                                alpha=0.2, lw=0)
        else:
            ax.plot([], [], color=color, label=run_label(run))
        if decay_lines:
            for it in run.get("decay_iterations", []):
                ax.axvline(it, color=color, ls="--", lw=1, alpha=0.8)
    drawn = np.concatenate(drawn) if drawn else np.zeros(0)
    if not drawn.size:  # every run diverged: an empty panel that says so (a log axis would fail to draw)
        ax.text(0.5, 0.5, "no surviving run", transform=ax.transAxes, ha="center", va="center", color="0.4")
    elif log and (drawn > 0).any():
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_xlabel("iteration")
    ax.set_title(title or metric.replace("_", " "))
    if legend:
        ax.legend()


def panels(results: dict, specs: list[dict], ncols: int | None = None, suptitle: str | None = None):
    """A row (or grid) of metric panels with one shared legend below; specs are plot_metric's keywords."""
    with plt.rc_context(STYLE):
        ncols = ncols or len(specs)
        nrows = -(-len(specs) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.1 * nrows + 1.0), squeeze=False,
                                 layout="constrained")
        for ax, spec in zip(axes.flat, specs):
            plot_metric(ax, results, **spec)
        for ax in list(axes.flat)[len(specs):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 3), frameon=False)
        note = survival_note(results)
        fig.suptitle((suptitle or results["experiment"]) + ("\n" + note if note else ""), fontsize=11)
    return fig


def survival_note(results: dict) -> str:
    n = results.get("n_seeds")
    if not n or all(r.get("deterministic") for r in results["runs"]):
        return ""
    return (f"mean and min–max over surviving seeds (asked for {n} per run); "
            "statistics are conditioned on survival")
