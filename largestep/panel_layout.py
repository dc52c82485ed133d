"""The panels' layout engine: margins from what each panel draws outside its box, measured cheaply.

Imported by the figure builders only (it imports matplotlib), through `plotting.panel_layout()`.
"""
from __future__ import annotations

import matplotlib
import matplotlib.cbook
import matplotlib.ticker
import numpy as np
from matplotlib.layout_engine import LayoutEngine

from .plotting import tick_groups


_EXTENTS: dict = {}  # (text, font, dpi, rotation) -> (width, height): the layout measures the same labels often


def _text_extent(renderer, text: str, prop, rotation: float = 0.0):
    """(width, height) in pixels of a text as a Text draws it, rotated: lines of the font's line height
    (whatever the characters) at the default line spacing."""
    key = (text, hash(prop), renderer.dpi, rotation)
    if key not in _EXTENTS:
        if len(_EXTENTS) > 10_000:
            _EXTENTS.clear()
        line_height = _EXTENTS.get(("lp", key[1], key[2]))
        if line_height is None:
            line_height = _EXTENTS["lp", key[1], key[2]] = renderer.get_text_width_height_descent(
                "lp", prop, ismath=False)[1]
        lines = text.split("\n") if not matplotlib.cbook.is_math_text(text) else [text]
        sizes = [renderer.get_text_width_height_descent(line, prop, ismath=matplotlib.cbook.is_math_text(line))
                 for line in lines]
        width = max(w for w, _, _ in sizes)
        height = max(max(h for _, h, _ in sizes), line_height) * (1 + 1.2 * (len(lines) - 1))
        angle = np.deg2rad(rotation)
        _EXTENTS[key] = (abs(width * np.cos(angle)) + abs(height * np.sin(angle)),
                         abs(width * np.sin(angle)) + abs(height * np.cos(angle)))
    return _EXTENTS[key]


def _room(ax, renderer) -> dict:
    """What ax draws outside its box, in pixels per side: tick marks, tick labels (and their overhang past
    the box's ends), axis labels and titles.  Measured from the tick labels a draw would show (the
    locators and formatters at the axes' present size) without making a Tick object per tick."""
    dpi = ax.figure.dpi
    room = dict.fromkeys(("left", "right", "bottom", "top"), 0.0)
    if not ax.get_visible() or not ax.axison:
        return room
    for axis, (first, second), (start, end) in ((ax.xaxis, ("bottom", "top"), ("left", "right")),
                                                (ax.yaxis, ("left", "right"), ("bottom", "top"))):
        if not axis.get_visible():
            continue
        across_index = 1 if axis is ax.xaxis else 0  # x labels stand out by their height, y labels by width
        across = {first: 0.0, second: 0.0}
        overhang = 0.0
        for template, _, labels in tick_groups(axis):
            for side, line, label in ((first, template.tick1line, template.label1),
                                      (second, template.tick2line, template.label2)):
                if line.get_visible():
                    across[side] = max(across[side], template.get_tick_padding() * dpi / 72)
                if label.get_visible() and any(labels):
                    sizes = [_text_extent(renderer, text, label.get_fontproperties(), label.get_rotation())
                             for text in set(labels) if text]
                    offset = (template.get_pad() + template.get_tick_padding()) * dpi / 72
                    across[side] = max(across[side], offset + max(s[across_index] for s in sizes))
                    overhang = max(overhang, max(s[1 - across_index] for s in sizes) / 2)
        label = axis.label
        if label.get_visible() and label.get_text():
            size = label.get_window_extent(renderer)
            side = axis.get_label_position()
            across[side] += axis.labelpad * dpi / 72 + (size.height if axis is ax.xaxis else size.width)
        for side, extent in across.items():
            room[side] = max(room[side], extent)
        room[start], room[end] = max(room[start], overhang), max(room[end], overhang)
    titles = [t for t in (ax.title, getattr(ax, "_left_title", None), getattr(ax, "_right_title", None))
              if t is not None and t.get_visible() and t.get_text()]
    if titles:
        pad = matplotlib.rcParams["axes.titlepad"] * dpi / 72
        room["top"] = max(room["top"], pad + max(t.get_window_extent(renderer).height for t in titles))
    return room


def _thin_x_ticks(ax, renderer, gap_points: float = 6.0) -> None:
    """Fewer x ticks where their labels would touch: a MaxNLocator counts about three characters per label
    (Axis.get_tick_space), and iteration counts of six digits at the figure's panel widths run into each
    other ("80000100000").  Lowers the locator's nbins until neighbouring labels are gap_points apart."""
    axis = ax.xaxis
    locator = axis.get_major_locator()
    if not isinstance(locator, matplotlib.ticker.MaxNLocator) or not axis.get_visible():
        return
    for _ in range(8):
        groups = tick_groups(axis)
        if not groups:
            return
        template, locs, labels = groups[0]
        prop = template.label1.get_fontproperties()
        widths = np.array([_text_extent(renderer, text, prop, template.label1.get_rotation())[0] if text else 0.0
                           for text in labels])
        centres = ax.get_xaxis_transform().transform(np.c_[locs, np.zeros(len(locs))])[:, 0]
        room = np.diff(centres) - (widths[1:] + widths[:-1]) / 2
        if len(locs) < 3 or room.min() >= gap_points * ax.figure.dpi / 72:
            return
        locator.set_params(nbins=len(locs) - 2)


class PanelLayout(LayoutEngine):
    """A layout engine for a grid of panels (plt.subplots(..., layout=PanelLayout())) with a title above
    (fig.suptitle) and legends below (fig.legend(loc="lower center")): margins and spacing from what each
    panel draws outside its box (`_room`: tick labels measured as text, titles, axis labels, and colour bars
    beside their panel), in two cheap passes instead of constrained layout's measuring of every artist
    (which was a third of drawing a figure of metric panels).  Panels keep equal sizes; `pad` (points)
    separates the decorations from the figure's edges and from the title and legends, `between` (points)
    neighbouring panels' decorations.
    """

    _adjust_compatible = True
    _colorbar_gridspec = True

    def __init__(self, pad: float = 5.0, between: float = 10.0):
        super().__init__()
        self._params = {"pad": pad, "between": between}

    def set(self, **kwargs):
        self._params.update(kwargs)

    def execute(self, fig):
        for _ in range(2):  # the ticks follow the panels' sizes: a second pass settles them
            self._place(fig)

    def _place(self, fig):
        renderer = fig._get_renderer()  # as matplotlib's own engines: any canvas
        dpi, (width, height) = fig.dpi, fig.get_size_inches() * fig.dpi
        pad, between = (self._params[k] * dpi / 72 for k in ("pad", "between"))
        cells = []  # (first row, last row, first column, last column, room) per panel, colour bars with theirs
        grid = None
        for ax in fig.axes:
            spec = ax.get_subplotspec()
            if spec is None:
                continue
            top = spec.get_topmost_subplotspec()
            grid = top.get_gridspec()
            if ax.name == "rectilinear" and ax.get_visible():
                _thin_x_ticks(ax, renderer)
            cells.append((top.rowspan.start, top.rowspan.stop - 1, top.colspan.start, top.colspan.stop - 1,
                          _room(ax, renderer)))
        if grid is None:
            return
        nrows, ncols = grid.get_geometry()

        def most(side, keep):
            return max([room[side] for r0, r1, c0, c1, room in cells if keep(r0, r1, c0, c1)], default=0.0)

        above = pad
        title = getattr(fig, "_suptitle", None)
        if title is not None and title.get_visible() and title.get_text():
            title.set_y(1 - pad / height)
            title.set_verticalalignment("top")
            above += title.get_window_extent(renderer).height + pad
        below = pad + sum(legend.get_window_extent(renderer).height
                          + legend.borderaxespad * legend.prop.get_size_in_points() * dpi / 72
                          for legend in fig.legends if legend.get_visible())
        left = pad + most("left", lambda r0, r1, c0, c1: c0 == 0)
        right = pad + most("right", lambda r0, r1, c0, c1: c1 == ncols - 1)
        top = above + most("top", lambda r0, r1, c0, c1: r0 == 0)
        bottom = below + most("bottom", lambda r0, r1, c0, c1: r1 == nrows - 1)
        wgap = between + max([most("right", lambda r0, r1, c0, c1: c1 == c)
                              + most("left", lambda r0, r1, c0, c1: c0 == c + 1) for c in range(ncols - 1)],
                             default=0.0)
        hgap = between + max([most("bottom", lambda r0, r1, c0, c1: r1 == r)
                              + most("top", lambda r0, r1, c0, c1: r0 == r + 1) for r in range(nrows - 1)],
                             default=0.0)
        panel_width = (width - left - right - (ncols - 1) * wgap) / ncols
        panel_height = (height - top - bottom - (nrows - 1) * hgap) / nrows
        if panel_width <= 0 or panel_height <= 0:
            return  # decorations larger than the figure: leave the panels where they are
        fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                            top=1 - top / height, wspace=wgap / panel_width, hspace=hgap / panel_height)
