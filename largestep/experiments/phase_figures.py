"""Heat maps of a phase experiment (`phase`): rows eta, columns f, one panel per metric and one for divergence.

Every panel carries the 50%-divergence boundary (`phase.boundaries`, from the stored counts): the step
size, per column, above which most seeds tried diverged.  Cells where no seed survived are grey.
"""
from __future__ import annotations

import numpy as np

from ..plotting import figure_style, panel_layout, titled
from .phase import boundaries, divergence_fraction, median_map

NAMES = {"diag_sgd": "Diagonal nets (diag_sgd data)", "relu_two_layer": "Two-layer ReLU teacher-student (relu_two_layer data)"}


def _number(value: float, log: bool) -> str:
    if not np.isfinite(value):
        return ""
    if log:
        return f"{value:.0e}".replace("e-0", "e-")
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2f}"


def _panel(fig, ax, values, lrs, fractions, edge, title, log=False, vmin=None, vmax=None, cmap="viridis"):
    from matplotlib.colors import LogNorm, Normalize

    finite = values[np.isfinite(values)]
    if log and finite.size and (finite > 0).all():
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    else:
        norm = Normalize(vmin=finite.min() if vmin is None and finite.size else vmin,
                         vmax=finite.max() if vmax is None and finite.size else vmax)
    ax.set_facecolor("0.8")  # cells without a surviving seed
    mesh = ax.pcolormesh(np.ma.masked_invalid(values), cmap=cmap, norm=norm)
    fig.colorbar(mesh, ax=ax, shrink=0.9)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = _number(values[i, j], log)
            if text:
                shade = mesh.cmap(norm(values[i, j]))
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=5.5,
                        color="white" if dark else "black")
    # the boundary, in cell coordinates: eta -> row index by linear interpolation between grid rows
    rows = np.interp(edge, lrs, np.arange(len(lrs))) + 0.5
    columns = np.arange(len(fractions)) + 0.5
    drawn = np.isfinite(edge)
    ax.plot(columns[drawn], rows[drawn], color="red", lw=2, marker="o", ms=3, label="50% of seeds diverge")
    ax.set_xticks(columns, [f"{f:g}" for f in fractions])
    ax.set_yticks(np.arange(len(lrs)) + 0.5, [f"{lr:g}" for lr in lrs])
    ax.set_xlabel("end of the large-step phase f")
    ax.set_ylabel("initial step size η")
    ax.set_title(title)
    ax.grid(False)


def figures(results: dict) -> dict:
    """{experiment: figure}: one heat map per metric of the base, the divergence fraction, the boundary on each."""
    import matplotlib.pyplot as plt

    phase = results["phase"]
    lrs, fractions = phase["lrs"], phase["fractions"]
    edge = boundaries(results)
    maps = phase["maps"]
    with figure_style():
        fig, axes = plt.subplots(2, 2, figsize=(13, 10.5), layout=panel_layout())
        for ax, (metric, title, log) in zip(axes.flat, maps):
            _panel(fig, ax, median_map(results, metric), lrs, fractions, edge, f"{title}, median over survivors",
                   log=log)
        _panel(fig, axes.flat[len(maps)], divergence_fraction(results), lrs, fractions, edge,
               "fraction of the seeds tried that diverged", vmin=0, vmax=1, cmap="magma")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", frameon=False)
        n = results.get("n_seeds")
        fig.suptitle(titled(results, f"{NAMES.get(phase['base'], phase['base'])}: step η until the fraction f of "
                                     f"training, then η={phase['final_lr']:g}\n{n} surviving seeds asked for per "
                                     "cell (at most 10x tried); statistics are conditioned on survival; grey: "
                                     "no seed survived"), fontsize=11)
    return {results["experiment"]: fig}
