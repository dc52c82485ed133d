"""Shared figure pieces on plain matplotlib (constrained layout): one colour per run, the median over surviving
seeds with a quartile band, decay marks, the sharpness panel, saving.

Every experiment's figure is built from its results dict alone (see experiments/), through these.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .seeds import divergence_note

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


@contextmanager
def figure_style(**overrides):
    """Build figures in STYLE (plus overrides); every rc setting is restored afterwards except one.

    The first pyplot figure of a Jupyter kernel activates the inline backend, which switches interactive
    mode on.  A plain `plt.rc_context` would switch it back off on exit, and from then on Jupyter shows
    no figure, ours or the user's, without an explicit display().  So interactive mode stays as it is
    when the block ends.
    """
    import matplotlib

    with matplotlib.rc_context({**STYLE, **overrides}):
        try:
            yield
        finally:
            interactive = matplotlib.is_interactive()
    matplotlib.interactive(interactive)


def check_label(text: str) -> None:
    """ConfigError when `text` (a run label that a legend will draw) is mathtext matplotlib cannot parse, so
    that a bad label stops a run before it trains rather than when its figure is drawn."""
    if "$" not in text:
        return
    from matplotlib import cbook
    from matplotlib.mathtext import MathTextParser

    from .config import ConfigError

    if cbook.is_math_text(text):
        try:
            MathTextParser("path").parse(text)
        except ValueError as err:
            reason = str(err).strip().splitlines()[-1]
            raise ConfigError(f"run label '{text}' is not mathtext matplotlib can draw ({reason}); escape "
                              "a literal dollar sign as \\$") from None


QUICK_MARK = "QUICK RUN (shortened training; a check of the code, not the full-scale result)"


def titled(results: dict, title: str) -> str:
    """A figure title that says so on its face when the results come from a quick run."""
    return f"{QUICK_MARK}\n{title}" if results.get("quick") else title


def run_colors(n: int) -> list:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def as_array(curve) -> np.ndarray:
    """A curve from a results file (lists with nulls) as a float array with NaNs."""
    return np.array([[np.nan if v is None else v for v in row] for row in curve], dtype=float) \
        if len(curve) and isinstance(curve[0], (list, tuple, np.ndarray)) else \
        np.array([np.nan if v is None else v for v in curve], dtype=float)


def recorded_curves(results: dict) -> set:
    """The metrics whose curves any run of `results` records."""
    return {m for run in results.get("runs", []) for m in run.get("curves", {})}


def nan_percentiles(values: np.ndarray, q) -> np.ndarray:
    """np.nanpercentile(values, q, axis=0), value for value, without its per-column Python loop (which
    costs more than drawing a panel): columns with the same number k of non-NaN entries go to
    np.percentile together, on those k values (sorted first: NaNs sort last)."""
    ordered = np.sort(values, axis=0)
    counts = (~np.isnan(values)).sum(0)
    out = np.full((len(q), values.shape[1]), np.nan)
    for k in np.unique(counts[counts > 0]):
        columns = counts == k
        out[:, columns] = np.percentile(ordered[:k, columns], q, axis=0)
    return out


def run_label(run: dict) -> str:
    """A run's legend entry: its label, and what diverged and collapsed, each with its 95% interval."""
    return f"{run['label']} ({divergence_note(run, interval=True)})"


def legend_below(fig, handles, labels, most: int = 3) -> None:
    """One legend for the figure, below its panels, in as many columns (up to `most`) as its labels fit."""
    import matplotlib

    size = matplotlib.rcParams["legend.fontsize"]
    char_inches = 0.6 * size / 72 if isinstance(size, (int, float)) else 0.07
    widest = char_inches * max((len(label) for label in labels), default=0) + 0.6  # + the line sample
    ncol = max(1, min(len(labels), most, int(fig.get_figwidth() // widest)))
    fig.legend(handles, labels, loc="outside lower center", ncol=ncol, frameon=False)


def plot_metric(ax, results: dict, metric: str, *, log: bool = False, title: str | None = None,
                ylim=None, zoom_after: float | None = None, styles: dict | None = None, decay_lines: bool = True,
                legend: bool = False) -> None:
    """Median over surviving seeds (line) and their interquartile range (band) of `metric`, one colour per
    run; a mean would follow the worst seed on a log axis.

    Runs that share their start (one step size, decayed at different points) draw the same curve until their
    decays: the run listed first is drawn on top, so each shows until it leaves the others.  Decays are
    marked by a triangle on the top edge (not mistaken for a curve falling vertically), side by side where
    several runs decay at the same iteration.  zoom_after: the y range fits the curves after that fraction of
    training (the first evaluations can dwarf the rest); styles: run key -> line style.
    """
    import matplotlib.transforms as transforms

    runs = results["runs"]
    colors = run_colors(len(runs))
    drawn, later = [], []
    for index, (run, color) in enumerate(zip(runs, colors)):
        iteration = np.asarray(run["curves"]["iteration"], dtype=float)
        values = as_array(run["curves"].get(metric, []))
        drawn.append(values[np.isfinite(values)])
        style = {"color": color, "zorder": 2 + (len(runs) - index) / len(runs),
                 "ls": (styles or {}).get(run.get("key"), "-")}
        if values.size:
            values = np.atleast_2d(values)
            median = np.nanmedian(values, 0) if np.isfinite(values).any() else np.full(values.shape[1], np.nan)
            ax.plot(iteration, median, lw=1.5, label=run_label(run), **style)
            if len(values) > 1:
                low, high = nan_percentiles(values, [25, 75])
                ax.fill_between(iteration, low, high, color=color, alpha=0.2, lw=0)
            for row in np.atleast_2d(as_array(run.get("curves_collapsed", {}).get(metric, []))):
                if row.size:  # collapsed seeds apart from the statistics: thin dotted lines
                    ax.plot(iteration, row, color=color, lw=0.8, ls=":", alpha=0.8, zorder=style["zorder"])
            if zoom_after is not None:
                late = iteration >= zoom_after * iteration[-1]
                later.append(np.concatenate([median[late], *nan_percentiles(values[:, late], [25, 75])])
                             if len(values) > 1 else median[late])
        else:
            ax.plot([], [], label=run_label(run), **style)
    if decay_lines:
        at = {}
        for run, color in zip(runs, colors):
            for it in run.get("decay_iterations", []):
                at.setdefault(it, []).append(color)
        for it, shared in at.items():
            for j, color in enumerate(shared):
                shift = transforms.offset_copy(ax.get_xaxis_transform(), fig=ax.figure,
                                               x=8 * (j - (len(shared) - 1) / 2), y=0, units="points")
                ax.plot(it, 1.0, "v", color=color, ms=7, mec="white", mew=0.5, clip_on=False, zorder=5,
                        transform=shift)
    drawn = np.concatenate(drawn) if drawn else np.zeros(0)
    if not drawn.size:  # every run diverged: an empty panel that says so (a log axis would fail to draw)
        ax.text(0.5, 0.5, "no surviving run", transform=ax.transAxes, ha="center", va="center", color="0.4")
    elif log and (drawn > 0).any():
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    elif later:
        values = np.concatenate(later)
        values = values[np.isfinite(values)]
        if values.size:
            low, high = values.min(), values.max()
            pad = 0.08 * (high - low or abs(high) or 1.0)
            ax.set_ylim(low - pad, high + pad)
    iteration_axis(ax)
    ax.set_title(title or metric.replace("_", " "))
    if legend:
        ax.legend()


def iteration_axis(ax, nbins: int = 4) -> None:
    """An x axis of iterations: a few ticks, thousands written as 'k' (six-digit counts at the default tick
    density run into each other in a panel of 3.6 inches)."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(nbins=nbins, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}"))
    ax.set_xlabel("iteration")


def panels(results: dict, specs: list[dict], ncols: int | None = None, suptitle: str | None = None):
    """A row (or grid) of metric panels with one shared legend below; specs are plot_metric's keywords."""
    import matplotlib.pyplot as plt  # here, not at the top: commands that draw nothing skip its import

    with figure_style():
        ncols = ncols or len(specs)
        nrows = -(-len(specs) // ncols)
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.1 * nrows + 1.0), squeeze=False,
                                 layout="constrained")
        for ax, spec in zip(axes.flat, specs):
            plot_metric(ax, results, **spec)
        for ax in list(axes.flat)[len(specs):]:
            ax.set_visible(False)
        legend_below(fig, *axes.flat[0].get_legend_handles_labels())
        note = survival_note(results)
        fig.suptitle(titled(results, suptitle or results["experiment"]) + ("\n" + note if note else ""),
                     fontsize=11)
    return fig


def survival_note(results: dict) -> str:
    n = results.get("n_seeds")
    decays = "; ▼ decay" if any(r.get("decay_iterations") for r in results["runs"]) else ""
    if any(r.get("seeds_collapsed") for r in results["runs"]):
        decays += "; dotted: collapsed seeds (a dead layer), left out of the statistics"
    deterministic = [r.get("deterministic") for r in results["runs"]]
    if not n or all(deterministic):
        return decays.lstrip("; ")
    per_run = "per run" if not any(deterministic) else "per run; deterministic runs: one each"
    return (f"median and interquartile band over surviving seeds, asked for {n} {per_run}\n"
            f"statistics are conditioned on survival{decays}")


def step_at(run: dict, iterations: int) -> np.ndarray:
    """The step size the run takes right after each grid iteration (its last one at the end of training),
    rebuilt from the schedule it records."""
    from .config import from_dict
    from .schedules import Schedule

    steps = from_dict(Schedule, run["schedule"]).values(iterations)
    grid = np.asarray(run["curves"]["iteration"], dtype=np.int64)
    return steps[np.minimum(grid, iterations - 1)]


def sharpness_counts(run: dict) -> str:
    """'above 2/η in the first 2%: 3 of 5 surviving seeds (95% CI ...); after it: 0 of 5', from the per-seed
    finals (the sharpness is measured on the surviving seeds)."""
    from .stats import counted, rate_text

    def flags(name):
        return [s[name] for s in run["final_per_seed"] if counted(s) and s.get(name) is not None
                and s[name] == s[name]]
    early, later = flags("sharpness_above_2_over_eta_early"), flags("sharpness_above_2_over_eta_later")
    if not early:
        return "no surviving seed"
    return (f"above 2/η in the first 2%: {rate_text(int(sum(early)), len(early), 'surviving seeds')}; "
            f"after it: {rate_text(int(sum(later)), len(later))}")


def sharpness_figure(results: dict, title: str):
    """The top eigenvalue of the training loss's Hessian along training against 2/η, one panel per run.

    Gradient descent on a quadratic is stable while sharpness < 2/η.  Each panel: every surviving seed (thin),
    their median (bold) and each seed's largest value (dot), at the points where it was measured (dense over the
    first 2% of training, where a large step can push it past 2/η for a few updates, then log-spaced), on a log
    axis of iterations; the run's 2/η dashed; how many seeds went above it early and later.
    """
    import matplotlib.pyplot as plt

    iterations = int(results["config"]["iterations"])
    runs = results["runs"]
    with figure_style():
        fig, axes = plt.subplots(1, len(runs), figsize=(3.7 * len(runs), 4.4), squeeze=False, sharey=True,
                                 layout="constrained")
        for ax, run, color in zip(axes[0], runs, run_colors(len(runs))):
            grid = np.asarray(run["curves"]["iteration"], dtype=float)
            ax.plot(grid + 1, 2.0 / step_at(run, iterations), color="0.2", lw=1.0, ls="--")
            values = np.atleast_2d(as_array(run["curves"].get("sharpness", [])))
            measured = np.isfinite(values).any(0) if values.size else np.zeros(len(grid), bool)
            if measured.any():
                for row in values[:, measured]:
                    ax.plot(grid[measured] + 1, row, color=color, lw=0.6, alpha=0.45)
                    top = int(np.nanargmax(row))
                    ax.plot(grid[measured][top] + 1, row[top], "o", color=color, ms=3.5, mec="white", mew=0.4)
                ax.plot(grid[measured] + 1, np.nanmedian(values[:, measured], 0), color=color, lw=2.0)
            ax.axvspan(1, 0.02 * iterations + 1, color="0.85", zorder=0, lw=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("iteration + 1")
            ax.set_title(f"{run['label']}\n({divergence_note(run)})", fontsize=9)
            ax.text(0.03, 0.03, sharpness_counts(run).replace(": ", ":\n", 1).replace("; ", "\n"),
                    transform=ax.transAxes, fontsize=7, va="bottom", ha="left",
                    bbox={"boxstyle": "round,pad=0.25", "fc": "white", "alpha": 0.8, "lw": 0})
        axes[0, 0].set_ylabel("top Hessian eigenvalue of the train loss")
        handles = [plt.Line2D([], [], color="0.3", lw=0.6), plt.Line2D([], [], color="0.3", lw=2.0),
                   plt.Line2D([], [], color="0.3", marker="o", ls="", ms=3.5),
                   plt.Line2D([], [], color="0.2", lw=1.0, ls="--"),
                   plt.matplotlib.patches.Patch(color="0.85")]
        legend_below(fig, handles, ["each surviving seed", "median", "each seed's largest value", "2/η of the step",
                                    "first 2% of training"], most=5)
        fig.suptitle(titled(results, f"{title}\nsharpness along training against 2/η (log axes)"), fontsize=11)
    return fig


def save_formats(fig, stem, formats=("png", "pdf")) -> list:
    """Write fig to stem.<format> for each format, each file atomically; returns the paths."""
    from pathlib import Path

    from .results import save_figure

    stem = Path(stem)
    return [save_figure(fig, stem.with_name(f"{stem.name}.{ext}")) for ext in formats]
