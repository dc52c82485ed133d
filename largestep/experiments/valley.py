"""`stabilization_1d` and `loss_surface`: the valley in pictures.

`stabilization_1d`: SGD on the paper's 1-D model at step sizes below, inside and above the interval where
the loss stabilizes in a band (the paper's proposition: inside it the loss stays bounded away from 0 without
diverging).  `loss_surface`: gradient flow, GD and SGD with large steps on a small diagonal net, seen on the
plane through w_init, w* and w_flow, plus the animation GF vs SGD (the paper's claim: GD bounces in place,
gradient flow stops at w_flow, SGD drifts along the valley to w*).  `python -m largestep reproduce
stabilization_1d loss_surface` (a few seconds each here); narrated in diag_nets_2d_loss_surface.ipynb.
Sections: stabilization_1d (config, run, figures, claims), then loss_surface likewise.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import diag_nets, landscape, stabilization
from ..claims import Claim, all_of, every_seed_diverges, every_seed_within, seeds_below
from ..config import ConfigError, check_keys, to_dict
from ..data import sparse_regression
from ..plotting import as_array, figure_style, legend_below, panels, run_colors, titled
from ..results import fail, require, require_config, require_grid, require_numbers
from ..stats import counted
from ..schedules import Schedule
from ..seeds import Batch, divergence_note, diverged, evaluation_grid, run_record, train_until_survivors
from . import Experiment
from .diag import DiagRun, check_runs


# ---------------------------------------------------------------- stabilization_1d

@dataclass(frozen=True)
class StepRun:
    key: str  # the run's name in claims ("below", "inside", ...)
    label: str
    lr: float


@dataclass(frozen=True)
class StabilizationConfig:
    runs: tuple[StepRun, ...]  # below the threshold, inside the interval, divergent, then any extras
    iterations: int = 100_000
    theta0: float = 0.5
    theta_star: float = 1.0
    x_min: float = 1.0
    x_max: float = 1.1
    grid_early: int = 200  # every one of the first iterations (the bouncing is visible step by step)...
    grid_spaced: int = 250  # ...then evenly spaced ones

    def validate(self) -> None:
        if self.iterations < 2:
            raise ConfigError(f"iterations must be >= 2, got {self.iterations}")
        if self.grid_early < 0 or self.grid_spaced < 1:
            raise ConfigError(f"need grid_early >= 0 and grid_spaced >= 1, got {self.grid_early}, {self.grid_spaced}")
        if not 0 < self.x_min < self.x_max < math.inf:
            raise ConfigError(f"need 0 < x_min < x_max, got x_min={self.x_min}, x_max={self.x_max}")
        if not 0 < self.theta_star < math.inf:
            raise ConfigError(f"theta_star must be > 0, got {self.theta_star}")
        if not 0 < self.theta0 < math.inf:
            raise ConfigError(f"theta0 must be > 0 (theta = 0 is a fixed point), got {self.theta0}")
        check_keys(self.runs)
        for run in self.runs:
            if not (math.isfinite(run.lr) and run.lr > 0):
                raise ConfigError(f"run {run.label!r}: step size must be a finite number > 0, got {run.lr}")

    def quick(self) -> "StabilizationConfig":
        return dataclasses.replace(self, iterations=self.iterations // 20)

    def labels(self) -> list[str]:
        return [run.label for run in self.runs]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """Per row (run x seed): its inputs x, one per iteration, and its curves."""
        rows = len(self.runs) * n_seeds
        return rows * 8 * (2 * self.iterations + 4 * (self.grid_early + self.grid_spaced)), \
            "iterations, grid sizes, runs"


def run_stabilization(config: StabilizationConfig, n_seeds: int = 5, progress=None) -> dict:
    """SGD on the 1-D model, every run and seed as one batched program (seeds draw the inputs x)."""
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    lrs = np.array([r.lr for r in config.runs])
    model = dict(theta0=config.theta0, theta_star=config.theta_star, x_min=config.x_min, x_max=config.x_max)

    def train_batch(run_ids, seeds):
        out = stabilization.run_sgd(lrs[run_ids], seeds, config.iterations, grid, **model)
        if progress is not None:  # one vectorized program: the batch is done in one go
            progress.start_batch(len(seeds), config.iterations, 1)
            progress.advance(config.iterations)
        return Batch(curves={"loss": out["loss"], "theta": out["theta"]}, diverged=out["diverged"],
                     final={"loss_min_last_half": out["loss_min_last_half"],
                            "loss_max_last_half": out["loss_max_last_half"],
                            "diverged_at": out["diverged_at"].astype(float)},
                     seconds={"train": out["seconds"]})

    rows, seconds = train_until_survivors(train_batch, [True] * len(config.runs), n_seeds)
    runs = []
    for spec, run_rows in zip(config.runs, rows):
        record = run_record(spec.key, spec.label, {"lr": spec.lr}, run_rows, grid)
        for key in ("final_mean", "final_median"):  # a statistic over survivors of "diverged at" means nothing
            record[key].pop("diverged_at")
        record["diverged_at"] = [int(r.final["diverged_at"]) for r in run_rows if r.diverged]
        runs.append(record)
    low, high = stabilization.bouncing_interval(config.theta_star, config.x_min, config.x_max)
    return {"runs": runs, "seconds": seconds,
            "stability_threshold": stabilization.stability_threshold(config.theta_star, config.x_max),
            "bouncing_interval": [low, high]}


def stabilization_figures(results: dict) -> dict:
    import matplotlib.pyplot as plt

    cfg = results["config"]
    runs = results["runs"]
    colors = run_colors(len(runs))
    threshold = results["stability_threshold"]
    low, high = results["bouncing_interval"]
    with figure_style():
        fig, (ax_loss, ax_theta, ax_eta) = plt.subplots(1, 3, figsize=(13.5, 3.9), layout="constrained")
        for run, color in zip(runs, colors):
            label = f"η={run['lr']:g}: {run['label']} ({divergence_note(run)})"
            curves = run["curves"] if not run["diverged"] else run["curves_diverged"]
            iteration = np.asarray(run["curves"]["iteration"], float)
            loss, theta = as_array(curves["loss"]), as_array(curves["theta"])
            if loss.size == 0:
                continue
            # one seed, not a mean: the iterate alternates sides of theta* and a mean would hide it
            # the run inside the interval on top: its band is the point of the panel, not hidden under another run
            ax_loss.plot(iteration + 1, loss[0], color=color, lw=0.8, label=label,
                         zorder=3 if low < run["lr"] < high else 2)
            early = iteration <= 40
            ax_theta.plot(iteration[early], theta[0][early], ".-", color=color, lw=0.8, ms=3)
            if run["diverged"]:
                ax_eta.plot(run["lr"], 1.0, "x", color=color, ms=8, mew=2)
                ax_eta.annotate(f"diverged\n(all by iteration {max(run['diverged_at'])})", (run["lr"], 1.0), xytext=(-6, -24),
                                textcoords="offset points", fontsize=8, color=color, ha="right")
            else:
                per_seed = [s for s in run["final_per_seed"] if counted(s)]
                lo = min(s["loss_min_last_half"] for s in per_seed)
                hi = max(s["loss_max_last_half"] for s in per_seed)
                if hi <= 0:  # converged exactly: theta* is a fixed point that float64 reaches
                    ax_eta.annotate("loss = 0", (run["lr"], 1e-19), fontsize=8, color=color, ha="center")
                    ax_eta.plot(run["lr"], 1e-20, "v", color=color, ms=8, clip_on=False)
                    continue
                ax_eta.plot([run["lr"]] * 2, [max(lo, 1e-20), hi], "-", color=color, lw=4,
                            solid_capstyle="butt")
        ax_loss.set(xscale="log", yscale="log", xlabel="iteration + 1", title="loss (one seed)")
        ax_loss.set_ylim(1e-20, 1e3)
        ax_theta.axhline(cfg["theta_star"], color="black", ls="--", lw=1)
        ax_theta.set(xlabel="iteration", ylabel="θ", title="θ over the first 40 iterations (θ* dashed)")
        ax_theta.set_ylim(-0.1, 2.0)
        ax_eta.axvspan(low, high, color="tab:orange", alpha=0.25, lw=0,
                       label=f"interval ({low:.3g}, {high:.3g})")
        ax_eta.axvline(threshold, color="black", ls="--", lw=1, label=f"(θ* x_max)⁻² = {threshold:.3g}")
        ax_eta.set(yscale="log", xlabel="step size η",
                   title="loss range over the second half\n(min–max over iterations and seeds)")
        ax_eta.set_ylim(1e-20, 10)
        ax_eta.legend(loc="center right", fontsize=7)
        legend_below(fig, *ax_loss.get_legend_handles_labels(), most=2)
        fig.suptitle(titled(results, f"Loss stabilization in one dimension: h(x) = xθ², "
                                     f"x ~ U[{cfg['x_min']:g}, {cfg['x_max']:g}], θ₀ = {cfg['theta0']:g}, "
                                     f"{cfg['iterations']:,} iterations"), fontsize=11)
    return {"stabilization_1d": fig}


STABILIZATION_1D = Experiment(
    name="stabilization_1d",
    title="1-D model: below the threshold the loss converges, inside the interval it stabilizes in a band",
    config=StabilizationConfig(runs=(
        StepRun("below", "below the threshold: converges", 0.8),
        StepRun("inside", "inside the interval: bounces", 1.02),
        StepRun("diverges", "too large: diverges", 2.0),
        StepRun("past", "bounded, leaves the band", 1.3),
    )),
    run=run_stabilization,
    claims=(
        Claim("below the threshold the loss converges: η={below.lr} ends below 1e-20 in every seed", True,
              every_seed_within("loss_max_last_half", "below", high=1e-20)),
        Claim("inside the interval the loss stays in a band: over the second half, every seed's loss at "
              "η={inside.lr} stays within [1e-3, 1]", True,
              all_of(every_seed_within("loss_min_last_half", "inside", low=1e-3),
                     every_seed_within("loss_max_last_half", "inside", high=1.0))),
        Claim("too large a step diverges: η={diverges.lr} diverges in every seed tried", True,
              every_seed_diverges("diverges")),
        Claim("past the interval the loss leaves the band: η={past.lr} survives but dips below 1e-6 in every seed",
              True, every_seed_within("loss_min_last_half", "past", high=1e-6)),
    ),
    notebook="diag_nets_2d_loss_surface.ipynb",
    headline=("loss_min_last_half", "loss_max_last_half"),
)


# ---------------------------------------------------------------- loss_surface

@dataclass(frozen=True)
class LossSurfaceConfig:
    runs: tuple[DiagRun, ...]  # runs[0] approximates gradient flow: its endpoint is w_flow
    animation_runs: tuple[DiagRun, ...]  # gradient flow, then SGD: their trajectories move in the GIF
    n: int = 20
    d: int = 30
    r: int = 3
    iterations: int = 10_001
    n_test: int = 1000
    init_scale: float = 0.1
    data_seed: int = 0
    grid_early: int = 300  # GD's large steps bounce at every early iteration: record each of them...
    grid_spaced: int = 250  # ...then evenly spaced ones
    coef_min: float = -0.5  # plane coordinates (Euclidean, along e1 and e2) of the surface grid
    coef_max: float = 2.3
    grid_points: int = 100
    clip: float = 100.0
    animation_b_range: tuple[float, float] = (-0.3, 1.15)
    # frames: each of the first iterations (where both runs fall into the valley fast), then evenly
    # spaced ones (where SGD drifts along the valley at a steady pace)
    animation_frames_early: int = 120
    animation_frames_spaced: int = 240
    animation_fps: int = 30

    def validate(self) -> None:
        for name in ("n", "d", "r", "iterations", "n_test", "grid_points", "animation_fps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.r > self.d:
            raise ConfigError(f"r must be <= d, got r={self.r}, d={self.d}")
        for name in ("grid_early", "animation_frames_early"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("grid_spaced", "animation_frames_spaced"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.data_seed < 2**32:
            raise ConfigError(f"data_seed must be >= 0 and < 2**32, got {self.data_seed}")
        for name in ("clip", "init_scale"):
            if not 0 < getattr(self, name) < math.inf:
                raise ConfigError(f"{name} must be a finite number > 0, got {getattr(self, name)}")
        if not -math.inf < self.coef_min < self.coef_max < math.inf:
            raise ConfigError(f"need coef_min < coef_max, got {self.coef_min}, {self.coef_max}")
        if not -math.inf < self.animation_b_range[0] < self.animation_b_range[1] < math.inf:
            raise ConfigError(f"animation_b_range must be increasing, got {self.animation_b_range}")
        for runs, name in ((self.runs, "runs"), (self.animation_runs, "animation_runs")):
            check_runs(runs)
            if runs[0].algorithm != "gd":
                raise ConfigError(f"{name}[0] must be the gradient-flow run (algorithm 'gd')")

    def quick(self) -> "LossSurfaceConfig":
        return dataclasses.replace(self, iterations=self.iterations // 20 + 1, grid_points=40,
                                   animation_frames_early=20, animation_frames_spaced=20)

    def labels(self) -> list[str]:
        return [run.name() for run in (*self.runs, *self.animation_runs)]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """Per row: step sizes and sample stream, parameters and curves; the surfaces: a grid of losses, each
        point an n-vector of residuals."""
        rows = (len(self.runs) + len(self.animation_runs)) * n_seeds
        grid = self.grid_early + self.grid_spaced + self.animation_frames_early + self.animation_frames_spaced
        per_row = 8 * (2 * self.iterations + 6 * grid + 4 * self.d)
        surface = 8 * self.grid_points ** 2 * (max(self.n, self.n_test) + 2 * self.d)
        return 8 * (self.n + self.n_test) * self.d + rows * per_row + surface, \
            "n, d, n_test, iterations, grid_points, grid and frame counts"


def sign_symmetric_distance(u: np.ndarray, v: np.ndarray, w_star_half: np.ndarray) -> np.ndarray:
    """l2 distance from (u, v) (R, d) to w* = (s, s), up to the flips (u_i, v_i) -> (-u_i, -v_i) that leave
    beta = u*v unchanged (SGD's large steps do flip pairs)."""
    same = (u - w_star_half) ** 2 + (v - w_star_half) ** 2
    flipped = (u + w_star_half) ** 2 + (v + w_star_half) ** 2
    return np.sqrt(np.minimum(same, flipped).sum(axis=1))


def _train_on_plane(config, data, runs, grid, n_seeds, w_star_half, progress):
    """Train runs (batched; SGD seeds until n_seeds survive) and record losses, distance to w* and the
    trajectory's coordinates on the plane through w_init, w*, w_flow (w_flow = endpoint of runs[0])."""
    steps = np.stack([r.schedule.values(config.iterations) for r in runs])
    x, y = data.x_train, data.y_train
    u_flow, v_flow = diag_nets.init(1, config.d, config.init_scale)
    diag_nets.train(u_flow, v_flow, x, y, steps[:1], "gd", [0], np.array([config.iterations]), lambda k: None)
    w_init = np.concatenate([np.full(config.d, config.init_scale), np.zeros(config.d)])
    w_star = np.concatenate([w_star_half, w_star_half])
    w_flow = np.concatenate([u_flow[0], v_flow[0]])
    flow_diverged = diverged(w_flow).any()
    if not flow_diverged:
        plane = landscape.plane_through(w_init, w_star, w_flow)
    else:  # gradient flow diverged, there is no w_flow: the plane holds the direction it set out in instead
        start = np.concatenate([np.zeros(config.d), x.T @ y / len(y)])  # -gradient at w_init, up to a factor
        plane = landscape.plane_through(w_init, w_star, w_init + start)

    def evaluate(algorithm, u, v):
        beta = u * v
        w = np.concatenate([u, v], axis=1)
        # SGD is projected with |u|, |v| (as in the paper): its pair flips are symmetries of the loss
        coords = landscape.project(plane, np.abs(w) if algorithm == "sgd" else w)
        return {"train_loss": diag_nets.loss(x, y, beta),
                "test_loss": diag_nets.loss(data.x_test, data.y_test, beta),
                "distance_to_w_star": sign_symmetric_distance(u, v, w_star_half),
                "plane_a": coords[:, 0], "plane_b": coords[:, 1]}

    def train_batch(run_ids, seeds):
        return diag_nets.train_runs(x, y, steps[run_ids], [runs[r].algorithm for r in run_ids], seeds, grid,
                                    evaluate, config.init_scale, progress)

    rows, seconds = train_until_survivors(train_batch, [r.algorithm == "sgd" for r in runs], n_seeds)
    records = []
    for index, (spec, run_rows) in enumerate(zip(runs, rows)):
        records.append(run_record(spec.key, _plane_label(index, spec), {
            "algorithm": spec.algorithm, "schedule": to_dict(spec.schedule),
            "decay_iterations": spec.schedule.decay_iterations(config.iterations)},
            run_rows, grid, deterministic=spec.algorithm != "sgd"))
    landmarks = {"w_init": [0.0, 0.0], "w*": landscape.project(plane, w_star).tolist()}
    if not flow_diverged:
        landmarks["w_flow"] = landscape.project(plane, w_flow).tolist()
    return records, seconds, plane, landmarks


def _plane_label(index: int, spec: DiagRun) -> str:
    """The first run of a plane approximates gradient flow, and its derived label says so."""
    return f"gradient flow ({spec.name()})" if index == 0 and not spec.label else spec.name()


def _rounded(values: np.ndarray, digits: int = 4) -> list:
    """Surface values to `digits` significant digits: the figure needs no more, the JSON stays small."""
    values = np.asarray(values, float)
    scale = 10.0 ** (digits - 1 - np.floor(np.log10(np.abs(np.where(values == 0, 1.0, values)))))
    return (np.round(values * scale) / scale).tolist()


def run_loss_surface(config: LossSurfaceConfig, n_seeds: int = 5, progress=None) -> dict:
    data = sparse_regression(config.n, config.d, config.r, config.n_test, config.data_seed)
    w_star_half = np.sqrt(data.extras["beta_star"])
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    runs, seconds, plane, landmarks = _train_on_plane(config, data, config.runs, grid, n_seeds, w_star_half,
                                                      progress)
    coefs = np.linspace(config.coef_min, config.coef_max, config.grid_points)
    surfaces = {name: _rounded(landscape.surface(plane, coefs, coefs, xs, ys, config.clip))
                for name, xs, ys in (("train_loss", data.x_train, data.y_train),
                                     ("test_loss", data.x_test, data.y_test))}

    # the animation: one surviving SGD seed against gradient flow, on its own plane (w_flow of its GF run)
    frames = evaluation_grid(config.iterations, config.animation_frames_early, config.animation_frames_spaced)
    anim_runs, anim_seconds, anim_plane, anim_landmarks = _train_on_plane(
        config, data, config.animation_runs, frames, 1, w_star_half, progress)
    anim_b = np.linspace(*config.animation_b_range, config.grid_points)
    animation = {
        "a": coefs, "b": anim_b, "iteration": frames, "fps": config.animation_fps,
        "train_loss": _rounded(landscape.surface(anim_plane, coefs, anim_b, data.x_train, data.y_train,
                                                 config.clip)),
        "landmarks": anim_landmarks,
        "trajectories": [{"label": r["label"], "seed": (r["seeds"] or [None])[0], "diverged": r["diverged"],
                          "final": r["final_median"],
                          "coords": np.stack([as_array(r["curves"]["plane_a"])[0],
                                              as_array(r["curves"]["plane_b"])[0]], axis=1)
                          if r["seeds"] else []}
                         for r in anim_runs],
    }
    for k, v in anim_seconds.items():
        seconds[k] = seconds.get(k, 0.0) + v
    return {"runs": runs, "seconds": seconds,
            "surface": {"a": coefs, "b": coefs, **surfaces, "landmarks": landmarks,
                        "clip": config.clip},
            "animation": animation}


_TRAJECTORY_COLORS = {"gd_flow": "black", "gd": "0.35", "sgd": "#00b000"}


def _trajectory_color(index: int, run: dict) -> str:
    return _TRAJECTORY_COLORS["gd_flow" if index == 0 else run["algorithm"]]


def loss_surface_figures(results: dict) -> dict:
    import matplotlib.pyplot as plt

    surface = results["surface"]
    a, b = np.asarray(surface["a"]), np.asarray(surface["b"])
    cfg = results["config"]
    net = f"Diagonal net n={cfg['n']}, d={cfg['d']}, r={cfg['r']}"
    with figure_style(**{"axes.grid": False}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
        for ax, metric, title in zip(axes, ("train_loss", "test_loss"), ("train loss", "test loss")):
            landscape.draw_surface(ax, a, b, as_array(surface[metric]))
            for i, run in enumerate(results["runs"]):
                if not run["seeds"]:
                    continue
                seed = "" if run["deterministic"] else f" (seed {run['seeds'][0]}; {divergence_note(run)})"
                ax.plot(as_array(run["curves"]["plane_a"])[0], as_array(run["curves"]["plane_b"])[0], ".-",
                        color=_trajectory_color(i, run), lw=0.8, ms=2, label=run["label"] + seed)
            landscape.draw_landmarks(ax, surface["landmarks"])
            clipped = f" (clipped at {surface['clip']:g})" if np.nanmax(as_array(surface[metric])) >= surface["clip"] else ""
            third, along = (("w_flow", "w_flow − w_init (orthogonal part)") if "w_flow" in surface["landmarks"] else
                            ("−∇L(w_init)", "−∇L(w_init), orthogonal part (GF diverged: no w_flow)"))
            ax.set(title=f"{title} on the plane through w_init, w*, {third}{clipped}",
                   xlabel="along w* − w_init", ylabel=f"along {along}")
            ax.title.set_fontsize(9)
        axes[0].legend(loc="upper right", fontsize=7, framealpha=0.85)
        fig.suptitle(titled(results, f"{net}: GD with large steps bounces in place, "
                                     "gradient flow stops at w_flow, SGD drifts to w*"), fontsize=10)
    curves = panels(results, [
        {"metric": "train_loss", "log": True, "title": "train loss"},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "distance_to_w_star", "log": True, "title": "distance to w*"},
    ], suptitle=f"{net}: loss and distance to w* (up to sign flips)")
    return {"loss_surface": fig, "loss_surface_curves": curves}


def loss_surface_extras(results: dict, out_dir, every: int = 1, **animate_options) -> list:
    """The animation: gradient flow against SGD with large steps over the train-loss surface.

    every > 1 keeps every n-th frame (and the last) at fps / n, same duration: a lighter GIF, e.g. for a
    notebook; animate_options go to landscape.animate (e.g. dpi=72).  By default 960 x 760 pixels (dpi 200):
    README's GIF, legible at the width of a page.
    """
    from pathlib import Path

    animate_options.setdefault("dpi", 200)

    anim = results["animation"]
    keep = np.unique(np.r_[np.arange(0, len(anim["iteration"]), every), len(anim["iteration"]) - 1])
    colors = ["black", "#00b000"]
    trajectories = {t["label"]: (np.asarray(t["coords"], float)[keep], c)
                    for t, c in zip(anim["trajectories"], colors) if len(t["coords"])}
    written = landscape.animate(
        Path(out_dir) / "loss_surface_animation.gif", np.asarray(anim["a"]), np.asarray(anim["b"]),
        as_array(anim["train_loss"]), trajectories, anim["landmarks"], np.asarray(anim["iteration"])[keep],
        fps=max(1, round(anim["fps"] / every)), title="QUICK RUN: training loss over a 2-D subspace" if results.get("quick")
        else "Training loss over a 2-D subspace", **animate_options)
    note = landscape.mp4_note()
    if note:
        print(f"  {note}")
    return written


def check(results: dict) -> None:
    """The fields the figures and the animation read, for `experiments.load`."""
    if "stability_threshold" in results:
        require_config(results, StabilizationConfig)
        require(results, "stability_threshold", (int, float), "a number")
        require_numbers(require(results, "bouncing_interval", list, "[low, high]"), "bouncing_interval", 1)
        if len(results["bouncing_interval"]) != 2:
            raise fail("bouncing_interval", "[low, high]", results["bouncing_interval"])
        for k, run in enumerate(results["runs"]):
            require(run, "lr", (int, float), "a number", f"runs.{k}")
            require_numbers(require(run, "diverged_at", list, "a list of iterations", f"runs.{k}"),
                            f"runs.{k}.diverged_at", 1, finite=True)
            for name in ("loss", "theta"):
                require(run["curves" if not run["diverged"] else "curves_diverged"], name, list, "curves",
                        f"runs.{k}.curves")
        return
    require_config(results, LossSurfaceConfig)
    for k, run in enumerate(results["runs"]):
        if require(run, "algorithm", str, "'gd' or 'sgd'", f"runs.{k}") not in ("gd", "sgd"):
            raise fail(f"runs.{k}.algorithm", "'gd' or 'sgd'", run["algorithm"])
        require_config(run, Schedule, "schedule", f"runs.{k}")
        if run["seeds"]:
            for name in ("plane_a", "plane_b"):
                require(run["curves"], name, list, "curves", f"runs.{k}.curves")
    surface = require(results, "surface", dict, "an object (a, b, train_loss, test_loss, landmarks, clip)")
    for name in ("a", "b"):
        require_numbers(require(surface, name, list, "a list of numbers", "surface"), f"surface.{name}", 1)
    for name in ("train_loss", "test_loss"):
        require_grid(require(surface, name, list, "a grid of numbers", "surface"), f"surface.{name}",
                     len(surface["b"]), len(surface["a"]))
    require(surface, "clip", (int, float), "a number", "surface")
    _landmarks(require(surface, "landmarks", dict, "an object of points", "surface"), "surface.landmarks")
    animation = results.get("animation")
    if animation is None:
        return
    if not isinstance(animation, dict):
        raise fail("animation", "an object", animation)
    for name in ("a", "b", "iteration"):
        require_numbers(require(animation, name, list, "a list of numbers", "animation"), f"animation.{name}", 1)
    require_grid(require(animation, "train_loss", list, "a grid of numbers", "animation"), "animation.train_loss",
                 len(animation["b"]), len(animation["a"]))
    fps = require(animation, "fps", int, "a whole number >= 1", "animation")
    if fps < 1:
        raise fail("animation.fps", "a whole number >= 1", fps)
    _landmarks(require(animation, "landmarks", dict, "an object of points", "animation"), "animation.landmarks")
    for k, trajectory in enumerate(require(animation, "trajectories", list, "a list", "animation")):
        at = f"animation.trajectories.{k}"
        if not isinstance(trajectory, dict):
            raise fail(at, "an object", trajectory)
        require(trajectory, "label", str, "a string", at)
        coords = require(trajectory, "coords", list, "a list of (a, b) points", at)
        if coords:
            require_grid(coords, f"{at}.coords", len(animation["iteration"]), 2)


def _landmarks(points: dict, field: str) -> None:
    for name, point in points.items():
        require_numbers(point, f"{field}.{name}", 1, finite=True)
        if len(point) != 2:
            raise fail(f"{field}.{name}", "a point (a, b)", point)


def figures(results: dict) -> dict:
    """The family's figures: the 1-D model's, or the plane's and its curves."""
    return stabilization_figures(results) if "stability_threshold" in results else loss_surface_figures(results)


def extras(results: dict, out_dir) -> list:
    """The loss-surface animation (none for the 1-D model, nor for results holding no trajectories)."""
    if not results.get("animation", {}).get("trajectories"):
        return []
    return loss_surface_extras(results, out_dir)


LOSS_SURFACE = Experiment(
    name="loss_surface",
    title="Diagonal net: GF, GD and SGD on a 2-D plane of the loss (plus the GF vs SGD animation)",
    config=LossSurfaceConfig(
        runs=(
            DiagRun("flow", "gd", Schedule(0.03)),  # gradient flow
            DiagRun("gd", "gd", Schedule(3.0, ((0.5, 3.0),))),
            DiagRun("sgd", "sgd", Schedule(0.6, ((0.5, 3.0),))),
        ),
        animation_runs=(
            DiagRun("flow", "gd", Schedule(0.25)),  # gradient flow
            DiagRun("sgd", "sgd", Schedule(0.6, ((0.75, 1.5),))),
        ),
    ),
    run=run_loss_surface,
    claims=(
        Claim("SGD ends at least 5x closer to w* than gradient flow, in every surviving seed", True,
              seeds_below("distance_to_w_star", "sgd", "flow", factor=5)),
        Claim("SGD's test loss is at least 100x below gradient flow's, in every surviving seed", True,
              seeds_below("test_loss", "sgd", "flow", factor=100)),
        Claim("GD with large steps reaches a lower train loss than gradient flow", True,
              seeds_below("train_loss", "gd", "flow")),
        Claim("... but a higher test loss than gradient flow", True, seeds_below("test_loss", "flow", "gd")),
        Claim("gradient flow stops away from w*: distance to w* above 0.5", True,
              every_seed_within("distance_to_w_star", "flow", low=0.5)),
    ),
    notebook="diag_nets_2d_loss_surface.ipynb",
    headline=("test_loss", "distance_to_w_star"),
)
