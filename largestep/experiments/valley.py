"""`stabilization_1d` and `loss_surface`: the valley in pictures.

`stabilization_1d`: SGD on the paper's 1-D model at step sizes below, inside and above the interval where
the loss stabilizes in a band.  `loss_surface`: gradient flow, GD and SGD with large steps on a small
diagonal net, seen on the plane through w_init, w* and w_flow; plus the animation GF vs SGD.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .. import diag_nets, landscape, stabilization
from ..config import ConfigError, to_dict
from ..data import sparse_regression
from ..plotting import as_array
from ..schedules import Schedule
from ..sweep import Batch, diverged, evaluation_grid, run_record, train_until_survivors
from . import Experiment
from .diag import DiagRun
from .valley_figures import loss_surface_extras, loss_surface_figures, stabilization_figures


# ---------------------------------------------------------------- stabilization_1d

@dataclass(frozen=True)
class StepRun:
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
        if not self.runs:
            raise ConfigError("runs must not be empty")
        for run in self.runs:
            if not (math.isfinite(run.lr) and run.lr > 0):
                raise ConfigError(f"run {run.label!r}: step size must be a finite number > 0, got {run.lr}")

    def quick(self) -> "StabilizationConfig":
        return dataclasses.replace(self, iterations=self.iterations // 20)


def run_stabilization(config: StabilizationConfig, n_seeds: int = 5, progress=None) -> dict:
    """SGD on the 1-D model, every run and seed as one batched program (seeds draw the inputs x)."""
    config.validate()
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
        record = run_record(spec.label, {"lr": spec.lr}, run_rows, grid)
        for key in ("final", "final_median"):  # a mean over survivors of "diverged at" means nothing
            record[key].pop("diverged_at")
        record["diverged_at"] = [int(r.final["diverged_at"]) for r in run_rows if r.diverged]
        runs.append(record)
    low, high = stabilization.bouncing_interval(config.theta_star, config.x_min, config.x_max)
    return {"config": to_dict(config), "n_seeds": n_seeds, "runs": runs, "seconds": seconds,
            "stability_threshold": stabilization.stability_threshold(config.theta_star, config.x_max),
            "bouncing_interval": [low, high]}


STABILIZATION_1D = Experiment(
    name="stabilization_1d",
    title="1-D model: below the threshold the loss converges, inside the interval it stabilizes in a band",
    config=StabilizationConfig(runs=(
        StepRun("below the threshold: converges", 0.8),
        StepRun("inside the interval: bounces", 1.02),
        StepRun("too large: diverges", 2.0),
        StepRun("bounded, leaves the band", 1.3),
    )),
    run=run_stabilization,
    figures=stabilization_figures,
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
            if not runs or runs[0].algorithm != "gd":
                raise ConfigError(f"{name}[0] must be the gradient-flow run (algorithm 'gd')")
            for run in runs:
                if run.algorithm not in ("gd", "sgd"):
                    raise ConfigError(f"run {run.name()!r}: algorithm must be 'gd' or 'sgd'")
                run.schedule.validate()

    def quick(self) -> "LossSurfaceConfig":
        return dataclasses.replace(self, iterations=self.iterations // 20 + 1, grid_points=40,
                                   animation_frames_early=20, animation_frames_spaced=20)


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
        records.append(run_record(_plane_label(index, spec), {
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
    config.validate()
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
                          "final": r["final"],
                          "coords": np.stack([as_array(r["curves"]["plane_a"])[0],
                                              as_array(r["curves"]["plane_b"])[0]], axis=1)
                          if r["seeds"] else []}
                         for r in anim_runs],
    }
    for k, v in anim_seconds.items():
        seconds[k] = seconds.get(k, 0.0) + v
    return {"config": to_dict(config), "n_seeds": n_seeds, "runs": runs, "seconds": seconds,
            "surface": {"a": coefs, "b": coefs, **surfaces, "landmarks": landmarks,
                        "clip": config.clip},
            "animation": animation}


LOSS_SURFACE = Experiment(
    name="loss_surface",
    title="Diagonal net: GF, GD and SGD on a 2-D plane of the loss (plus the GF vs SGD animation)",
    config=LossSurfaceConfig(
        runs=(
            DiagRun("", "gd", Schedule(0.03)),  # gradient flow
            DiagRun("", "gd", Schedule(3.0, ((0.5, 3.0),))),
            DiagRun("", "sgd", Schedule(0.6, ((0.5, 3.0),))),
        ),
        animation_runs=(
            DiagRun("", "gd", Schedule(0.25)),  # gradient flow
            DiagRun("", "sgd", Schedule(0.6, ((0.75, 1.5),))),
        ),
    ),
    run=run_loss_surface,
    figures=loss_surface_figures,
    extras=loss_surface_extras,
)
