"""Shared figure pieces: one colour per run, median over surviving seeds with a quartile band, decay marks.

Every experiment's figure is built from its results dict alone (see experiments/), through these.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .sweep import divergence_note

STYLE = {
    "text.usetex": False,  # mathtext: no LaTeX install needed
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.titley": 1.0,  # where the automatic placement puts it (nothing of ours sits on top), without its cost
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


def legend_columns(fig, labels: list, most: int = 3) -> int:
    """As many legend columns (up to `most`) as fit the figure's width with its longest label, so that
    long derived labels wrap onto more rows instead of running off the figure."""
    import matplotlib

    char_inches = 0.6 * matplotlib.rcParams["legend.fontsize"] / 72 if isinstance(
        matplotlib.rcParams["legend.fontsize"], (int, float)) else 0.07
    widest = char_inches * max((len(label) for label in labels), default=0) + 0.6  # + the line sample
    return max(1, min(len(labels), most, int(fig.get_figwidth() // widest)))


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
    return f"{run['label']} ({divergence_note(run)})"


def plot_metric(ax, results: dict, metric: str, *, log: bool = False, title: str | None = None,
                ylim=None, decay_lines: bool = True, legend: bool = False) -> None:
    """Median over surviving seeds (line) and their interquartile range (band) of `metric`, one colour per
    run; a mean would follow the worst seed on a log axis.  Decays are marked by a triangle on the top edge,
    so that they cannot be mistaken for a curve falling vertically."""
    colors = run_colors(len(results["runs"]))
    drawn = []
    for run, color in zip(results["runs"], colors):
        iteration = np.asarray(run["curves"]["iteration"], dtype=float)
        values = as_array(run["curves"].get(metric, []))
        drawn.append(values[np.isfinite(values)])
        if values.size:
            values = np.atleast_2d(values)
            ax.plot(iteration, np.nanmedian(values, 0), color=color, lw=1.5, label=run_label(run))
            if len(values) > 1:
                low, high = nan_percentiles(values, [25, 75])
                ax.fill_between(iteration, low, high, color=color, alpha=0.2, lw=0)
        else:
            ax.plot([], [], color=color, label=run_label(run))
        if decay_lines:
            for it in run.get("decay_iterations", []):
                ax.plot(it, 1.0, "v", color=color, ms=7, mec="white", mew=0.5, clip_on=False, zorder=5,
                        transform=ax.get_xaxis_transform())
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
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=legend_columns(fig, labels), frameon=False)
        note = survival_note(results)
        fig.suptitle(titled(results, suptitle or results["experiment"]) + ("\n" + note if note else ""),
                     fontsize=11)
    return fig


def survival_note(results: dict) -> str:
    n = results.get("n_seeds")
    decays = "; ▼ decay" if any(r.get("decay_iterations") for r in results["runs"]) else ""
    deterministic = [r.get("deterministic") for r in results["runs"]]
    if not n or all(deterministic):
        return decays.lstrip("; ")
    per_run = "per run" if not any(deterministic) else "per run; deterministic runs: one each"
    return (f"median and interquartile band over surviving seeds, asked for {n} {per_run}\n"
            f"statistics are conditioned on survival{decays}")


def save_formats(fig, stem, formats=("png", "pdf")) -> list:
    """Write fig to stem.<format> for each format (each file atomically); returns the paths.

    fig.savefig lays a constrained-layout figure out again for every file, in a text-measuring pass
    before each real draw.  Here the figure is laid out once and drawn once by Agg, the PNG is written from
    that buffer exactly as savefig writes it (same call, same pixels), and the other formats are drawn with
    the same layout: about half the drawing work for a PNG and a PDF.  Meanwhile the unlabelled minor
    ticks of log axes are drawn as one line of tick marks per axis (`minor_ticks_as_marks`).
    """
    from pathlib import Path

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from .results import atomic_write, save_figure

    stem = Path(stem)
    plain = (not isinstance(fig.canvas, FigureCanvasAgg) or "png" not in formats
             or matplotlib.rcParams["savefig.dpi"] != "figure" or matplotlib.rcParams["savefig.bbox"] is not None
             or matplotlib.rcParams["savefig.transparent"])
    if plain:  # savefig's own settings differ from the canvas': let it draw each file
        return [save_figure(fig, stem.with_name(f"{stem.name}.{ext}")) for ext in formats]
    engine = fig.get_layout_engine()
    written = []
    with minor_ticks_as_marks(fig) as place_marks:
        if engine is not None and fig.axes:  # what fig.draw does first
            try:
                engine.execute(fig)
            except ValueError:  # as fig.draw: a layout that cannot be solved leaves the axes where they are
                pass
        place_marks()
        fig.set_layout_engine("none")
        try:
            fig.canvas.draw()
            for ext in formats:
                path = stem.with_name(f"{stem.name}.{ext}")
                if ext == "png":
                    buffer = fig.canvas.buffer_rgba()
                    written.append(atomic_write(path, lambda tmp: matplotlib.image.imsave(
                        tmp, buffer, format="png", origin="upper", dpi=fig.dpi)))
                else:
                    written.append(save_figure(fig, path))
        finally:
            if engine is not None:
                fig.set_layout_engine(engine)
    return written


def tight_layout(fig, **options) -> None:
    """fig.tight_layout(**options), measuring the ticks' labels without the minor ticks' Tick objects."""
    with minor_ticks_as_marks(fig):
        fig.tight_layout(**options)


@contextmanager
def minor_ticks_as_marks(fig):
    """Lay out and draw a figure with each log axis' unlabelled minor ticks (an axis spanning several decades)
    as one Line2D of tick marks, with the ticks' own marker, size, width, colour, transform and zorder,
    instead of a Tick object each (five artists, updated and measured at every layout pass and draw): the
    same marks, for a third less layout and drawing time in a figure of log-loss panels.

    Yields place(): call it once the layout is final, since the minor ticks' positions depend on the axis'
    length.  Until then the minor ticks are off, which leaves the layout as it is: a tick without a label
    takes no room.  (Whether a log axis labels its minor ticks depends on its decades, not its length.)
    Everything is restored when the block ends.
    """
    import matplotlib.lines
    import matplotlib.ticker

    def visible_minor_locs(axis):  # the ticks matplotlib draws: within the view, with its tolerance
        scale = axis.get_transform()
        low, high = scale.transform(sorted(axis.get_view_interval()))
        slack = 1e-10 * (high - low)
        locs = np.asarray(axis.get_minorticklocs(), float)
        along = scale.transform(locs) if locs.size else locs
        return locs[(along >= low - slack) & (along <= high + slack)]

    hidden, placed = [], []

    def place():
        for axis, locator in hidden:
            axis.set_minor_locator(locator)
            along = visible_minor_locs(axis)
            axis.set_minor_locator(matplotlib.ticker.NullLocator())
            if not along.size:
                continue
            mark = axis.get_minor_ticks(1)[0].tick1line
            x, y = (along, np.zeros_like(along)) if axis.axis_name == "x" else (np.zeros_like(along), along)
            marks = matplotlib.lines.Line2D(
                x, y, linestyle="none", marker=mark.get_marker(), markersize=mark.get_markersize(),
                markeredgewidth=mark.get_markeredgewidth(), color=mark.get_markeredgecolor(),
                transform=mark.get_transform(), clip_on=False,
                zorder=np.nextafter(axis.get_zorder(), np.inf))  # over the axes' gridlines, as the ticks were
            axis.axes.add_artist(marks)  # add_artist: the axes' data limits stay as they are
            placed.append(marks)

    try:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                locator = axis.get_minor_locator()
                if axis.get_scale() != "log" or isinstance(locator, matplotlib.ticker.NullLocator):
                    continue
                tick = axis.get_minor_ticks(1)[0]
                if (not tick.tick1line.get_visible() or tick.tick2line.get_visible() or tick.gridline.get_visible()
                        or any(axis.get_minor_formatter().format_ticks(list(visible_minor_locs(axis))))):
                    continue
                hidden.append((axis, locator))
                axis.set_minor_locator(matplotlib.ticker.NullLocator())
        yield place
    finally:
        for marks in placed:
            marks.remove()
        for axis, locator in hidden:
            axis.set_minor_locator(locator)
