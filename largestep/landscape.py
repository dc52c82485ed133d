"""2-D views of a diagonal net's loss: a plane through w_init, the loss over a grid on it, trajectories
projected onto it, and an animation of trajectories moving over the surface.

A point of parameter space is w = (u, v) in R^{2d}.  The plane is w_init + a e1 + b e2 with e1 the unit
vector towards w* and e2 the unit part of (w_flow - w_init) orthogonal to e1, so (a, b) are plain
Euclidean coordinates: w_init sits at (0, 0) and w* at (||w* - w_init||, 0).
"""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from .results import atomic_target, atomic_write
from .seeds import diverged


@dataclass(frozen=True)
class Plane:
    origin: np.ndarray  # (2d,) w_init
    basis: np.ndarray  # (2, 2d) orthonormal rows e1, e2


def plane_through(w_init: np.ndarray, w_star: np.ndarray, w_flow: np.ndarray) -> Plane:
    """The plane through w_init spanned by the direction to w* and the rest of the direction to w_flow."""
    if diverged(w_flow).any():
        raise ValueError("w_flow is not finite (did the gradient-flow run diverge?): the plane is not defined")
    e1 = w_star - w_init
    e1 = e1 / np.linalg.norm(e1)
    to_flow = w_flow - w_init
    e2 = to_flow - (to_flow @ e1) * e1
    norm = np.linalg.norm(e2)
    if norm < 1e-12 * max(np.linalg.norm(to_flow), 1.0):
        raise ValueError("w_flow lies on the line through w_init and w*: the plane is not defined")
    return Plane(np.asarray(w_init, float), np.stack([e1, e2 / norm]))


def project(plane: Plane, w: np.ndarray) -> np.ndarray:
    """Coordinates (a, b) of the orthogonal projection of points w (..., 2d) onto the plane: (..., 2)."""
    return (np.asarray(w, float) - plane.origin) @ plane.basis.T


def points(plane: Plane, coefficients: np.ndarray) -> np.ndarray:
    """The points w_init + a e1 + b e2 of coefficients (..., 2): (..., 2d)."""
    return plane.origin + np.asarray(coefficients, float) @ plane.basis


def surface(plane: Plane, alphas: np.ndarray, betas: np.ndarray, x: np.ndarray, y: np.ndarray,
            clip: float = 100.0) -> np.ndarray:
    """Diagonal-net loss ||X(u*v) - y||^2 / (2n) on the grid: entry [j, i] is the loss at a = alphas[i],
    b = betas[j] (rows follow b, the layout contourf(alphas, betas, Z) expects), at most clip.

    On the plane, beta = u*v is a quadratic polynomial in (a, b), so the residual X beta - y is a fixed
    combination of six n-vectors with the monomials 1, a, b, a^2, ab, b^2: the whole grid is one
    (points x 6) @ (6 x n) product instead of a (points x 2d) point cloud pushed through X.
    """
    d = x.shape[1]
    (u0, v0), (u1, v1), (u2, v2) = [(w[:d], w[d:]) for w in (plane.origin, *plane.basis)]
    coefficients = np.stack([u0 * v0, u0 * v1 + u1 * v0, u0 * v2 + u2 * v0, u1 * v1, u1 * v2 + u2 * v1, u2 * v2])
    residual_basis = coefficients @ x.T
    residual_basis[0] -= y
    a, b = np.meshgrid(np.asarray(alphas, float), np.asarray(betas, float))
    monomials = np.stack([np.ones_like(a), a, b, a * a, a * b, b * b], axis=-1).reshape(-1, 6)
    residual = monomials @ residual_basis  # 2-D on purpose: numpy's stacked (3-D) matmul is ~100x slower here
    loss = 0.5 * np.einsum("pn,pn->p", residual, residual) / len(x)
    return np.minimum(loss, clip).reshape(a.shape)


def log_levels(values: np.ndarray, per_decade: int = 3) -> np.ndarray:
    """Contour levels evenly spaced in log10 over the positive range of values."""
    positive = values[np.isfinite(values) & (values > 0)]
    low, high = np.floor(np.log10(positive.min())), np.ceil(np.log10(positive.max()))
    return np.logspace(low, high, int((high - low) * per_decade) + 1)


def draw_surface(ax, alphas, betas, values, cmap: str = "coolwarm", colorbar: bool = True,
                 equal_aspect: bool = True):
    """Filled contours of values (rows: betas, columns: alphas) with log-spaced levels and a colour bar."""
    from matplotlib.colors import LogNorm

    values = np.asarray(values, float)
    levels = log_levels(values)
    norm = LogNorm(levels[0], levels[-1])
    filled = ax.contourf(alphas, betas, np.clip(values, levels[0], levels[-1]), levels=levels, cmap=cmap,
                         norm=norm)
    if colorbar:
        bar = ax.figure.colorbar(filled, ax=ax, fraction=0.046, pad=0.03)
        bar.set_ticks([t for t in 10.0 ** np.arange(-12, 4) if levels[0] <= t <= levels[-1]])
    if equal_aspect:  # the plane's coordinates are Euclidean: keep angles and distances true
        ax.set_aspect("equal")
    ax.set_xlim(alphas[0], alphas[-1])
    ax.set_ylim(betas[0], betas[-1])
    return filled


def draw_landmarks(ax, landmarks: dict) -> None:
    """Dots with labels at named points {label: (a, b)} (w_init, w_flow, w*)."""
    for label, (a, b) in landmarks.items():
        ax.plot(a, b, "o", color="navy", ms=4, zorder=5)
        ax.annotate(label, (a, b), xytext=(4, 4), textcoords="offset points", fontsize=10, color="navy",
                    zorder=6, bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.75, "lw": 0})


def animate(path, alphas, betas, values, trajectories: dict, landmarks: dict, iterations, *,
            fps: int = 30, title: str = "", size=(4.8, 3.8), dpi: int = 100, hold_s: float = 1.5) -> list[Path]:
    """Write trajectories {label: ((F, 2) coordinates, colour)} moving over the surface as an animated GIF
    (and an MP4 beside it when ffmpeg is on PATH), one frame per entry of iterations, the last one shown
    for hold_s seconds before the loop restarts.  Returns the paths written.

    The surface is drawn once.  A frame then touches only a few small pixel boxes: the trails grow by one
    segment drawn on the canvas as the last frame left it, once the pixels under that frame's heads are put
    back; the new heads are drawn over copies of what they cover.  The iteration counter is written by PIL
    into the frame alone, never on the canvas (matplotlib's text layout was most of a frame's cost).  Only
    the boxes of pixels that changed are mapped to the palette (taken from the first frame, so colours do
    not flicker and the GIF stays small) and pasted into a copy of the last frame.  Each frame is pixel for
    pixel what redrawing the trails segment by segment, the heads on top, then the counter would give.
    The MP4's frames are the same frames in full colour, piped to ffmpeg as they are made (`_mp4_stream`).
    """
    import matplotlib.transforms
    from PIL import Image

    scene = animation_scene(alphas, betas, values, trajectories, landmarks, title=title, size=size, dpi=dpi)
    canvas, ax, lines, heads, counter = scene.canvas, scene.ax, scene.lines, scene.heads, scene.counter
    canvas.draw()
    width, height = canvas.get_width_height()
    to_pixels = ax.transData.transform  # the axes' limits are fixed: one transform for every frame

    def pixel_boxes(segments, pad):  # [(x0, y0, x1, y1)]: pixels from the bottom left a line can touch
        boxes = []
        for points in segments:
            xy = to_pixels(points)
            x0, x1 = np.clip([np.floor(xy[:, 0].min() - pad), np.ceil(xy[:, 0].max() + pad)], 0, width).astype(int)
            y0, y1 = np.clip([np.floor(xy[:, 1].min() - pad), np.ceil(xy[:, 1].max() + pad)], 0, height).astype(int)
            if x1 > x0 and y1 > y0:  # else wholly off the canvas
                boxes.append((x0, y0, x1, y1))
        return boxes

    # What a line can touch beyond its points: its width, a marker's radius and its edge, antialiasing.
    line_pad = 3 + dpi / 72 * max((line.get_linewidth() for line in lines), default=0)
    head_pad = 3 + dpi / 72 * max((h.get_markersize() / 2 + h.get_markeredgewidth() + h.get_linewidth()
                                    for h in heads), default=0)
    labels = [f"iteration {int(i):,}" for i in iterations]
    counter_box = counter.box(labels)
    coords = [np.asarray(c, float) for c, _ in trajectories.values()]
    pixels = np.asarray(canvas.buffer_rgba())  # a view of the canvas
    images = []
    covered, under, palette = [], [], None  # boxes the last frame's heads cover, what was there
    path = Path(path)
    ffmpeg = shutil.which("ffmpeg")
    n_hold = round(hold_s * fps)

    def boxed(x0, y0, x1, y1, label=None):  # a box of the canvas (rows from the top), the counter written in
        piece = Image.fromarray(pixels[height - y1 : height - y0, x0:x1, :3])
        if label is not None:
            counter.draw(piece, label, offset=(x0, height - y1))
        return piece

    def quantized(x0, y0, x1, y1, label=None):
        return boxed(x0, y0, x1, y1, label).quantize(palette=palette, dither=Image.Dither.NONE)

    with matplotlib.rc_context({"path.simplify": False}), contextlib.ExitStack() as stack:
        write_mp4 = (stack.enter_context(_mp4_stream(ffmpeg, path.with_suffix(".mp4"), (width, height), fps))
                     if ffmpeg else None)
        rgba = np.empty_like(pixels)  # each MP4 frame, made here and written before the next
        for k, label in enumerate(labels):
            for region in under:
                canvas.restore_region(region)
            changed = covered
            if k > 0:
                for line, c in zip(lines, coords):
                    line.set_data(c[k - 1 : k + 1, 0], c[k - 1 : k + 1, 1])
                    ax.draw_artist(line)
                changed = changed + pixel_boxes([c[k - 1 : k + 1] for c in coords], line_pad)
            for head, c in zip(heads, coords):
                head.set_data(c[k : k + 1, 0], c[k : k + 1, 1])
            covered = pixel_boxes([c[k : k + 1] for c in coords], head_pad)
            under = [canvas.copy_from_bbox(matplotlib.transforms.Bbox.from_extents(*box)) for box in covered]
            for head in heads:
                ax.draw_artist(head)
            if k == 0:  # the palette from the first frame; every frame, this one too, mapped to it alike
                first = Image.fromarray(pixels[..., :3])
                counter.draw(first, label)
                palette = first.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
                images.append(first.quantize(palette=palette, dither=Image.Dither.NONE))
            else:
                frame = images[-1].copy()
                for x0, y0, x1, y1 in changed:
                    frame.paste(quantized(x0, y0, x1, y1), (x0, height - y1))
                x0, y0, x1, y1 = counter_box  # last: it holds all of the counter, over any box pasted before
                frame.paste(quantized(x0, y0, x1, y1, label), (x0, height - y1))
                images.append(frame)
            if write_mp4:
                np.copyto(rgba, pixels)  # all four channels: numpy copies three of four 30x slower
                x0, y0, x1, y1 = counter_box
                rgba[height - y1 : height - y0, x0:x1, :3] = np.asarray(boxed(x0, y0, x1, y1, label))
                for _ in range(1 + n_hold * (k == len(labels) - 1)):  # the last frame, held
                    write_mp4(rgba)
        n_frames = len(labels)
        durations = [round(1000 / fps)] * (n_frames - 1) + [round(1000 * max(hold_s, 1 / fps))]
        atomic_write(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                      duration=durations, loop=0, optimize=False, disposal=1))
    return [path, path.with_suffix(".mp4")] if ffmpeg else [path]


def animation_scene(alphas, betas, values, trajectories: dict, landmarks: dict, *, title: str = "", size=(4.8, 3.8),
                    dpi: int = 100) -> SimpleNamespace:
    """The animation's figure before its first frame: the surface, landmarks, legend and title drawn; the
    trails (lines) and heads as empty animated artists, one line and head per trajectory; and the iteration
    counter (`Counter`), written into frames rather than drawn on the canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=dpi)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    draw_surface(ax, alphas, betas, values, equal_aspect=False)
    draw_landmarks(ax, landmarks)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    lines, heads = [], []
    for label, (coords, color) in trajectories.items():
        lines.append(ax.plot([], [], "-", color=color, lw=1.4, label=label, animated=True)[0])
        heads.append(ax.plot([], [], "o", color=color, mec="black", ms=5, animated=True)[0])
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    fig.tight_layout()
    corner = ax.transAxes.transform((0.98, 0.03))  # the counter's right end on its baseline, from the bottom left
    width, height = canvas.get_width_height()
    counter = Counter((corner[0], height - corner[1]), (width, height), fontsize=8, dpi=dpi)
    return SimpleNamespace(fig=fig, canvas=canvas, ax=ax, lines=lines, heads=heads, counter=counter)


class Counter:
    """The animation's iteration counter: text in matplotlib's default font, right-aligned on its baseline at
    `anchor` (pixels from the top left), written by PIL into an image (a frame, or a box of one)."""

    def __init__(self, anchor, size, fontsize: float, dpi: float):
        from matplotlib import font_manager
        from PIL import ImageFont

        self.anchor, self.size = anchor, size  # size: the frame's (width, height) in pixels
        path = font_manager.findfont(font_manager.FontProperties(size=fontsize))
        self.font = ImageFont.truetype(path, max(1, round(fontsize * dpi / 72)))  # points to pixels

    def draw(self, image, label: str, offset=(0, 0)) -> None:
        """Write label into image, whose top left pixel is pixel `offset` of the frame."""
        from PIL import ImageDraw

        at = (self.anchor[0] - offset[0], self.anchor[1] - offset[1])
        ImageDraw.Draw(image).text(at, label, fill=(0, 0, 0), font=self.font, anchor="rs")

    def box(self, labels) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1): the pixels, counted from the bottom left as `animate` counts them, within which
        every one of labels is written (2 pixels of margin for antialiasing)."""
        extents = np.array([self.font.getbbox(label, anchor="rs") for label in set(labels)])
        left, top, right, bottom = *extents[:, :2].min(0), *extents[:, 2:].max(0)
        x, y = self.anchor
        width, height = self.size
        x0, x1 = max(0, int(np.floor(x + left)) - 2), min(width, int(np.ceil(x + right)) + 2)
        y0, y1 = max(0, height - int(np.ceil(y + bottom)) - 2), min(height, height - int(np.floor(y + top)) + 2)
        return x0, y0, x1, y1


@contextlib.contextmanager
def _mp4_stream(ffmpeg: str, path: Path, size: tuple[int, int], fps: int):
    """Yield write(frame), frame an (height, width, 4) RGBA uint8 array, for an MP4 that ffmpeg encodes while
    the frames are still being made: each goes down a pipe as it is written, so the encoding runs on another
    core meanwhile and no frame is kept (held for one write, the loss surface's 402 frames were 220 MB).
    The file appears at `path` when the block ends and ffmpeg has succeeded; when the block raises, or ffmpeg
    fails (its message is on stderr), ffmpeg is stopped, nothing is left behind and the error is raised."""
    width, height = size
    with atomic_target(path) as tmp:
        command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgba",
                   "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
                   "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-f", "mp4", tmp]
        process = subprocess.Popen(command, stdin=subprocess.PIPE)
        ended = broken = False
        try:
            yield lambda frame: process.stdin.write(memoryview(np.ascontiguousarray(frame)).cast("B"))
            process.stdin.close()
            ended = True
        except BrokenPipeError:  # ffmpeg stopped reading: it has exited, and its status says how
            ended = broken = True
        finally:
            if not ended:
                process.kill()
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
            status = process.wait()
        if status or broken:
            raise subprocess.CalledProcessError(status, command)


def mp4_note() -> str:
    """Why no MP4 was written, or '' when ffmpeg is available."""
    return "" if shutil.which("ffmpeg") else "MP4 skipped: ffmpeg is not on PATH (the GIF is written)"
