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
                                 layout=panel_layout())
        for ax, spec in zip(axes.flat, specs):
            plot_metric(ax, results, **spec)
        for ax in list(axes.flat)[len(specs):]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=legend_columns(fig, labels), frameon=False)
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

    fig.savefig lays a figure out again for every file, and every draw recomputes each axis' ticks and
    measures their labels several times over (to place the axis label), which is most of a figure of metric
    panels' drawing time.  Here the figure is laid out once, with numbers written as plain text
    (`plain_text_numbers`), each axis' ticks, labels and gridlines are then fixed as plain artists
    (`ticks_as_artists`), the figure is drawn once by Agg, the PNG is written from that buffer exactly as
    savefig writes it, and the other formats are drawn from the same layout and artists.  The figure gets
    its formatters, ticks and layout engine back afterwards.
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
    with plain_text_numbers(fig):
        if engine is not None and fig.axes:  # what fig.draw does first
            try:
                engine.execute(fig)
            except ValueError:  # as fig.draw: a layout that cannot be solved leaves the axes where they are
                pass
        fig.set_layout_engine("none")
        try:
            with ticks_as_artists(fig):
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


_SUPERSCRIPTS = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def plain_text(label: str) -> str:
    """A tick label of matplotlib's number formatters, '$\\mathdefault{10^{-5}}$' or
    '$\\mathdefault{6\\times10^{-1}}$', as the same number in plain text ('10⁻⁵', '6×10⁻¹'); anything else
    unchanged.  Mathtext parses each new label string once per process, at a cost that matters next to
    drawing it; the plain text draws the same number in the same font without the parser."""
    import re

    match = re.fullmatch(r"\$\\mathdefault\{(−|-)?([0-9.]*)(\\times)?(?:([0-9]+)\^\{(-?[0-9]+)\})?\}\$", label)
    if not match or not (match[2] or match[4]) or (match[3] and not (match[2] and match[4])):
        return label
    sign, coefficient, times, base, exponent = match.groups()
    return (("−" if sign else "") + coefficient + ("×" if times else "")
            + (base + exponent.translate(_SUPERSCRIPTS) if base else ""))


@contextmanager
def plain_text_numbers(fig):
    """Within the block, every axis of fig (colour bars' included) labels its ticks through `plain_text`."""
    import matplotlib.ticker

    class PlainText(matplotlib.ticker.Formatter):
        def __init__(self, formatter):
            self.formatter = formatter

        def set_locs(self, locs):
            self.formatter.set_locs(locs)

        def __call__(self, x, pos=None):
            return plain_text(self.formatter(x, pos))

        def format_ticks(self, values):
            return [plain_text(label) for label in self.formatter.format_ticks(values)]

        def get_offset(self):
            return plain_text(self.formatter.get_offset())

        def format_data(self, value):
            return self.formatter.format_data(value)

        def format_data_short(self, value):
            return self.formatter.format_data_short(value)

    swapped = []
    try:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                for ticker in (axis.major, axis.minor):
                    swapped.append((axis, ticker, ticker.formatter))
                    ticker.formatter = PlainText(ticker.formatter)
                    ticker.formatter.set_axis(axis)
        yield
    finally:
        for axis, ticker, formatter in swapped:
            ticker.formatter = formatter


def tick_groups(axis) -> list:
    """[(template Tick, locations, labels)] of the major and the minor ticks a draw of axis shows, as
    Axis.draw finds them (labels formatted over all the locator's ticks, then those within the view kept,
    with its tolerance), without making a Tick object per location: the template is the axis' first Tick of
    the kind."""
    scale = axis.get_transform()
    low, high = scale.transform(sorted(axis.get_view_interval()))
    slack = 1e-10 * (high - low)
    groups = []
    for locs, formatter, ticks in ((axis.get_majorticklocs(), axis.major.formatter, axis.get_major_ticks),
                                   (axis.get_minorticklocs(), axis.minor.formatter, axis.get_minor_ticks)):
        locs = np.asarray(locs, float)
        if not locs.size:
            continue
        labels = formatter.format_ticks(list(locs))
        along = scale.transform(locs)
        shown = (along >= low - slack) & (along <= high + slack)
        if shown.any():
            groups.append((ticks(1)[0], locs[shown], [label for label, s in zip(labels, shown) if s]))
    return groups


@contextmanager
def ticks_as_artists(fig):
    """Within the block, each axis of fig draws its ticks as a few fixed artists: one line of tick marks per
    kind (major/minor, either side), one line of gridlines, a Text per label and its axis label, all with
    the ticks' own properties, transforms and zorder, instead of recomputing every tick and measuring every
    label on each draw (Axis.draw measures each label three times over, and a log axis makes a Tick object
    of five artists for each of its dozens of minor ticks).  The same marks, gridlines and labels at the
    same places, for a fraction of the drawing time; to be entered once the layout is final, since the ticks
    depend on each axis' length.  Axes other than plain rectilinear ones, and axes with an offset text
    ("1e5"), are left as they are.  Everything is restored when the block ends.
    """
    import matplotlib.lines
    import matplotlib.text
    import matplotlib.ticker

    renderer = fig.canvas.get_renderer()
    added, locators, hidden = [], [], []

    def add(ax, artist, like, zorder):
        artist.set_zorder(zorder)
        ax.add_artist(artist)
        artist.set_clip_box(like.get_clip_box())  # add_artist clips to the axes; ticks' marks and labels are not
        artist.set_clip_path(like.get_clip_path())
        added.append(artist)
        return artist

    def one_line(like, points):
        """The points [(x, y) arrays] of several lines as one Line2D, NaN between them, drawn as `like`."""
        gap = [np.nan] if like.get_linestyle() not in ("None", " ", "") else []
        line = matplotlib.lines.Line2D(np.concatenate([np.r_[x, gap] for x, _ in points]),
                                       np.concatenate([np.r_[y, gap] for _, y in points]))
        line.update_from(like)
        return line

    def text_like(text, position, transform=None):
        copy = matplotlib.text.Text(*position, text.get_text())
        copy.update_from(text)
        copy.set_rotation_mode(text.get_rotation_mode())
        if transform is not None:
            copy.set_transform(transform)
        return copy

    try:
        for ax in fig.axes:
            if ax.name != "rectilinear" or not ax.get_visible() or not ax.axison:
                continue
            ax.apply_aspect()  # what draw does first: the ticks follow the axes' final box
            box = ax.get_window_extent(renderer)
            for axis in (ax.xaxis, ax.yaxis):
                if not axis.get_visible():
                    continue
                groups = tick_groups(axis)
                if axis.major.formatter.get_offset():
                    continue
                zorder = axis.get_zorder()
                sides = {"label1": [], "label2": []}
                outside = {"tick1line": 0.0, "tick2line": 0.0}
                for template, locs, labels in groups:
                    lines = {"gridline": [], "tick1line": [], "tick2line": []}
                    for loc, text in zip(locs, labels):
                        template.update_position(loc)
                        for part, points in lines.items():
                            line = getattr(template, part)
                            if line.get_visible():  # a gridline holds one x (or y) for its two points
                                points.append(np.broadcast_arrays(np.asarray(line.get_xdata(), float),
                                                                  np.asarray(line.get_ydata(), float)))
                        for part, texts in sides.items():
                            label = getattr(template, part)
                            if label.get_visible() and text:
                                label.set_text(text)
                                texts.append(add(ax, text_like(label, label.get_position()), label, zorder))
                    for part, points in lines.items():
                        like = getattr(template, part)
                        if like.get_linestyle() in ("-", "None", " ", "") and points:
                            add(ax, one_line(like, points), like, zorder)
                        else:  # a dash pattern would run on from one line to the next
                            for point in points:
                                add(ax, one_line(like, [point]), like, zorder)
                        if part in outside and points:
                            outside[part] = max(outside[part], template.get_tick_padding() * fig.dpi / 72)
                label = axis.label
                if label.get_visible() and label.get_text():
                    at = label.get_transform().transform(label.get_position())
                    if getattr(axis, "_autolabelpos", True):  # as Axis draws it: labelpad beyond its tick labels
                        first = axis.get_label_position() in ("bottom", "left")
                        boxes = [t.get_window_extent(renderer) for t in sides["label1" if first else "label2"]]
                        pad = axis.labelpad * fig.dpi / 72
                        mark = outside["tick1line" if first else "tick2line"]
                        if axis is ax.xaxis:
                            at[1] = (min([box.y0 - mark, *(b.y0 for b in boxes)]) - pad if first
                                     else max([box.y1 + mark, *(b.y1 for b in boxes)]) + pad)
                        else:
                            at[0] = (min([box.x0 - mark, *(b.x0 for b in boxes)]) - pad if first
                                     else max([box.x1 + mark, *(b.x1 for b in boxes)]) + pad)
                    # fixed in figure coordinates: its position is in pixels, which the PDF's 72 dpi changes
                    add(ax, text_like(label, fig.transFigure.inverted().transform(at), fig.transFigure), label,
                        zorder)
                    label.set_visible(False)
                    hidden.append(label)
                locators.append((axis, axis.major.locator, axis.minor.locator))
                axis.major.locator = axis.minor.locator = matplotlib.ticker.NullLocator()
        yield
    finally:
        for artist in added:
            artist.remove()
        for axis, major, minor in locators:
            axis.major.locator, axis.minor.locator = major, minor
        for label in hidden:
            label.set_visible(True)


def panel_layout(**params):
    """The layout engine of our figures (`panel_layout.PanelLayout`): plt.subplots(..., layout=panel_layout())."""
    from .panel_layout import PanelLayout

    return PanelLayout(**params)
