"""2-D views of a diagonal net's loss: a plane through w_init, the loss over a grid on it, trajectories
projected onto it, and an animation of trajectories moving over the surface.

A point of parameter space is w = (u, v) in R^{2d}.  The plane is w_init + a e1 + b e2 with e1 the unit
vector towards w* and e2 the unit part of (w_flow - w_init) orthogonal to e1, so (a, b) are plain
Euclidean coordinates: w_init sits at (0, 0) and w* at (||w* - w_init||, 0).
"""
from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .results import atomic_write
from .sweep import diverged


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

    The surface is drawn once; each frame restores a saved background and draws only what changed, so a
    frame costs a few milliseconds rather than a full contourf redraw.  The trails grow by one segment a
    frame: each frame draws its new segments on the background kept from the last one (surface and trails
    so far) and keeps that, then draws the heads and the counter on top, instead of redrawing whole trails
    (quadratic in the number of frames).  Frames are kept as the canvas' RGBA bytes (a plain copy).  All
    frames share one palette taken from the first frame, so colours do not flicker and the GIF stays small.
    """
    import matplotlib

    from PIL import Image
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
    counter = ax.text(0.98, 0.03, "", transform=ax.transAxes, ha="right", fontsize=8, animated=True)
    ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    fig.tight_layout()
    canvas.draw()
    trails = canvas.copy_from_bbox(fig.bbox)

    coords = [np.asarray(c, float) for c, _ in trajectories.values()]
    n_frames = len(iterations)
    frames = []
    with matplotlib.rc_context({"path.simplify": False}):
        for k in range(n_frames):
            canvas.restore_region(trails)
            if k > 0:
                for line, c in zip(lines, coords):
                    line.set_data(c[k - 1 : k + 1, 0], c[k - 1 : k + 1, 1])
                    ax.draw_artist(line)
                trails = canvas.copy_from_bbox(fig.bbox)
            for head, c in zip(heads, coords):
                head.set_data(c[k : k + 1, 0], c[k : k + 1, 1])
                ax.draw_artist(head)
            counter.set_text(f"iteration {int(iterations[k]):,}")
            ax.draw_artist(counter)
            frames.append(np.array(canvas.buffer_rgba()))
    size = frames[0].shape[1::-1]
    rgb = [Image.frombuffer("RGBA", size, f, "raw", "RGBA", 0, 1).convert("RGB") for f in frames]
    first = rgb[0].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [first] + [f.quantize(palette=first, dither=Image.Dither.NONE) for f in rgb[1:]]
    durations = [round(1000 / fps)] * (n_frames - 1) + [round(1000 * max(hold_s, 1 / fps))]
    path = Path(path)
    atomic_write(path, lambda tmp: images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                                                  duration=durations, loop=0, optimize=False, disposal=1))
    written = [path]
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        hold = [frames[-1]] * round(hold_s * fps)
        written.append(_write_mp4(ffmpeg, path.with_suffix(".mp4"), [f[..., :3] for f in frames + hold], fps))
    return written


def _write_mp4(ffmpeg: str, path: Path, frames: list[np.ndarray], fps: int) -> Path:
    height, width = frames[0].shape[:2]
    command = [ffmpeg, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
               "-s", f"{width}x{height}", "-r", str(fps), "-i", "-",
               "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", "-c:v", "libx264", str(path)]
    data = b"".join(f.tobytes() for f in frames)
    return atomic_write(path, lambda tmp: subprocess.run(command[:-1] + ["-f", "mp4", tmp], input=data, check=True))


def mp4_note() -> str:
    """Why no MP4 was written, or '' when ffmpeg is available."""
    return "" if shutil.which("ffmpeg") else "MP4 skipped: ffmpeg is not on PATH (the GIF is written)"
