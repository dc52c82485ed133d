"""Figures of the ReLU experiments, from a results dict alone (in memory or `results.load_results`).

The views follow what the results hold, not the experiment's name: predictor snapshots (`snapshot_x`)
give the 1-D views, teacher neurons (`teacher_neurons`) the first-layer picture, and the metric panels
show every feature-sparsity layer and the effective rank when recorded.  Titles are built from the
config the results carry, so an edited run (`--set`) is described as it was run.
"""
from __future__ import annotations

import numpy as np

from ..plotting import (as_array, figure_style, legend_columns, panel_layout, panels, plot_metric, run_colors,
                        run_label, survival_note, titled)
from . import recorded_curves
from .sharpness_figure import sharpness_figure

# What each of the paper's experiments shows, in words; the numbers come from the config.
TAGLINES = {
    "relu_1d": "short vs long large-step phase",
    "relu_1d_overreg": "stronger warmup (over-regularization)",
    "relu_two_layer": "large steps, decayed at different points",
    "relu_multi_layer": "warmup, large steps, one decay",
}
_LAYERS = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


def title(results: dict) -> str:
    """'Two-layer ReLU net (width 100), 1-D regression on 12 points: <tagline>' from the results' config."""
    cfg = results["config"]
    widths = list(cfg["widths"])
    layers = _LAYERS.get(len(widths) + 1, str(len(widths) + 1))
    net = f"{layers}-layer ReLU net (width{'s' if len(widths) > 1 else ''} {', '.join(map(str, widths))})"
    if cfg["task"] == "1d":
        task = f"1-D regression on {cfg['n']} points"
    else:
        teacher = ", ".join(map(str, cfg["teacher_widths"]))
        task = f"teacher-student, d={cfg['d']}, n={cfg['n']}, teacher widths {teacher}"
    tagline = TAGLINES.get(results.get("experiment"))
    return f"{net}, {task}" + (f": {tagline}" if tagline else "")


def _legend_and_title(fig, axes, results, text, note=None):
    """Legend below the panels and title above (the figure's panel_layout makes room for both)."""
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=legend_columns(fig, labels), frameon=False)
    note = survival_note(results) if note is None else note
    fig.suptitle(titled(results, text) + ("\n" + note if note else ""), fontsize=11)


def _seed_lines(ax, results, metric, log=False, title=None):
    """Every surviving seed as a thin line (stalled seeds stay visible), the median bold."""
    plot_metric(ax, results, metric, log=log, title=title)
    for run, color in zip(results["runs"], run_colors(len(results["runs"]))):
        values = np.atleast_2d(as_array(run["curves"].get(metric, [])))
        for row in values if values.size else []:
            ax.plot(run["curves"]["iteration"], row, color=color, lw=0.6, alpha=0.6)


def _figures_1d(results: dict) -> dict:
    import matplotlib.pyplot as plt

    name = results["experiment"]
    x_data = np.asarray(results["data"]["x_train"], float)[:, 0]
    y_data = np.asarray(results["data"]["y_train"], float)
    x_plot = np.asarray(results["snapshot_x"], float)
    colors = run_colors(len(results["runs"]))
    with figure_style():
        fig, axes = plt.subplots(1, 4, figsize=(14.4, 3.7), layout=panel_layout())
        _seed_lines(axes[0], results, "train_loss", log=True, title="train loss (each seed thin)")
        ax = axes[1]
        for run, color in zip(results["runs"], colors):
            for s, snaps in enumerate(run.get("extras", {}).get("snapshots", [])):
                ax.plot(x_plot, np.asarray(snaps, float)[-1], color=color, lw=1.4 if s == 0 else 0.6,
                        alpha=1.0 if s == 0 else 0.4)
        ax.scatter(x_data, y_data, color="k", zorder=5, s=14, label="data")
        ax.set_ylim(y_data.min() - 2, y_data.max() + 2)
        ax.set_title("final predictor (first seed bold)")
        ax.set_xlabel("x")
        plot_metric(axes[2], results, "jacobian_rank", title="Jacobian rank")
        plot_metric(axes[3], results, "feature_sparsity", title="feature sparsity (lower is sparser)")
        _legend_and_title(fig, axes, results, title(results))
        figs = {name: fig}

        iters = results["snapshot_iterations"]
        snap, sax = plt.subplots(1, len(iters), figsize=(2.9 * len(iters), 3.4), layout=panel_layout())
        sax = np.atleast_1d(sax)
        for i, (ax, it) in enumerate(zip(sax, iters)):
            for run, color in zip(results["runs"], colors):
                for s, snaps in enumerate(run.get("extras", {}).get("snapshots", [])):
                    ax.plot(x_plot, np.asarray(snaps, float)[i], color=color, lw=1.4 if s == 0 else 0.6,
                            alpha=1.0 if s == 0 else 0.35, label=run_label(run) if s == 0 else None)
            ax.scatter(x_data, y_data, color="k", zorder=5, s=10)
            ax.set_title(f"iteration {it}")
            ax.set_xlabel("x")
            if it > 0:  # the initial predictors are far larger than the data: let that panel scale itself
                ax.set_ylim(y_data.min() - 2, y_data.max() + 2)
        _legend_and_title(snap, sax, results, title(results) + "\npredictors during training (first seed bold)",
                          note="every surviving seed drawn; diverged seeds are not shown")
        figs[f"{name}_snapshots"] = snap
    return figs


def _metric_panels(results: dict):
    """Losses, Jacobian rank, feature sparsity of every recorded layer and the effective rank if recorded."""
    recorded = recorded_curves(results)
    layers = sorted((m for m in recorded if m.startswith("feature_sparsity_layer")),
                    key=lambda m: int(m.removeprefix("feature_sparsity_layer")))
    specs = [
        {"metric": "train_loss", "log": True, "title": "train loss"},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "jacobian_rank", "title": "Jacobian rank"},
        *({"metric": m, "title": f"feature sparsity, layer {m.removeprefix('feature_sparsity_layer')} "
                                 "(lower is sparser)"} for m in layers),
        *([{"metric": "feature_sparsity", "title": "feature sparsity (lower is sparser)"}]
          if "feature_sparsity" in recorded else []),
        *([{"metric": "effective_rank", "title": "effective rank, last hidden layer"}]
          if "effective_rank" in recorded else []),
    ]
    specs = [s for s in specs if s["metric"] in recorded]
    return panels(results, specs, ncols=3 if len(specs) > 4 else None, suptitle=title(results))


def _neurons(results: dict):
    """First-layer weights in the plane, init -> end of training, one seed per run, teacher in black."""
    import matplotlib.pyplot as plt

    teacher = np.asarray(results["teacher_neurons"], float)
    runs = results["runs"]
    with figure_style():
        fig, axes = plt.subplots(1, len(runs), figsize=(3.3 * len(runs), 3.6), squeeze=False,
                                 layout=panel_layout())
        # the same seed in every panel where possible: same initialization, same sampling stream
        common = set.intersection(*(set(r["seeds"]) for r in runs)) if runs else set()
        for ax, run, color in zip(axes[0], runs, run_colors(len(runs))):
            extras = run.get("extras", {})
            if not extras.get("first_layer_init"):
                ax.set_title(f"{run['label']}\n(no surviving seed)", fontsize=9)
                continue
            seed = min(common) if common else run["seeds"][0]
            k = run["seeds"].index(seed)
            w0 = np.asarray(extras["first_layer_init"][k], float)
            w1 = np.asarray(extras["first_layer_final"][k], float)
            a = np.asarray(extras["output_weights_final"][k], float)
            for t in teacher:
                ax.plot([0, 1.6 * t[0]], [0, 1.6 * t[1]], color="k", lw=2, alpha=0.8)
            ax.scatter(w0[:, 0], w0[:, 1], s=10, color="0.6", label="init")
            ax.scatter(w1[:, 0], w1[:, 1], s=12 + 30 * np.abs(a) / max(np.abs(a).max(), 1e-12), color=color,
                       label="final (size ~ |output weight|)")
            # one collection of arrows per panel (an annotation each costs as much to draw as the rest)
            ax.quiver(w0[:, 0], w0[:, 1], w1[:, 0] - w0[:, 0], w1[:, 1] - w0[:, 1], angles="xy",
                      scale_units="xy", scale=1, color=color, alpha=0.6, width=0.004, headwidth=4,
                      headlength=5, headaxislength=4.5, minlength=0)
            lim = 1.1 * max(np.abs(np.concatenate([w0, w1])).max(), 1.6)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_title(f"{run['label']}\nseed {seed}", fontsize=9)
        axes[0, 0].plot([], [], color="k", lw=2, label="teacher neurons")
        axes[0, 0].legend(loc="lower left", fontsize=7)
        fig.suptitle(titled(results, f"{title(results)}\nfirst-layer weights, init -> end of training "
                                     "(one seed; teacher directions in black)"), fontsize=11)
    return fig


def figures(results: dict) -> dict:
    """{file stem: figure}: the 1-D views when the results hold predictor snapshots, else the metric
    panels, plus the first-layer picture when they hold the teacher's neurons."""
    name = results["experiment"]
    if "snapshot_x" in results:
        return _figures_1d(results)
    figs = {name: _metric_panels(results)}
    if "teacher_neurons" in results:
        figs[f"{name}_neurons"] = _neurons(results)
    if "sharpness" in recorded_curves(results):
        figs[f"{name}_sharpness"] = sharpness_figure(results)
    return figs
