"""`diag_sgd` and `diag_gd`: diagonal linear nets on sparse regression, large steps then decays."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import diag_nets, metrics
from ..config import ConfigError, to_dict
from ..data import sparse_regression
from ..plotting import panels
from ..schedules import Schedule
from ..sharpness import diag_net_sharpness, sharpness_columns
from ..sweep import evaluation_grid, run_record, train_until_survivors
from . import Experiment, recorded_curves
from .sharpness_figure import sharpness_figure


@dataclass(frozen=True)
class DiagRun:
    label: str  # "" = derived from the algorithm and schedule, so that edits (--set) show in legends
    algorithm: str  # "gd" (full batch, deterministic) or "sgd" (batch size 1)
    schedule: Schedule

    def name(self) -> str:
        return self.label or f"{self.algorithm.upper()} {self.schedule.describe()}"


@dataclass(frozen=True)
class DiagConfig:
    n: int
    d: int
    r: int
    iterations: int
    runs: tuple[DiagRun, ...]
    n_test: int = 1000
    init_scale: float = 0.1  # u0 = init_scale * 1, v0 = 0
    data_seed: int = 0
    grid_early: int = 100  # metrics at each of the first iterations...
    grid_spaced: int = 250  # ...and at this many evenly spaced ones
    rank_tol: float = 1e-15  # Jacobian rank: s_k / s_max > tol, on the first 2d test points
    l0_threshold: float = 1e-50
    sharpness_points: int = 0  # > 0: the train loss's top Hessian eigenvalue at this many grid iterations

    def validate(self) -> None:
        for name in ("n", "d", "r", "iterations", "n_test"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.data_seed < 2**32:
            raise ConfigError(f"data_seed must be >= 0 and < 2**32, got {self.data_seed}")
        if self.grid_early < 0 or self.grid_spaced < 1:
            raise ConfigError(f"need grid_early >= 0 and grid_spaced >= 1, got {self.grid_early}, {self.grid_spaced}")
        if not 0 < self.rank_tol < 1:
            raise ConfigError(f"rank_tol must lie in (0, 1), got {self.rank_tol}")
        if not (np.isfinite(self.l0_threshold) and self.l0_threshold >= 0):
            raise ConfigError(f"l0_threshold must be a finite number >= 0, got {self.l0_threshold}")
        if self.sharpness_points < 0:
            raise ConfigError(f"sharpness_points must be >= 0 (0: not recorded), got {self.sharpness_points}")
        if self.r > self.d:
            raise ConfigError(f"r (support size) must be <= d, got r={self.r}, d={self.d}")
        if 2 * self.d > self.n_test:
            raise ConfigError(f"the Jacobian rank uses the first 2d test points: need n_test >= 2d = {2 * self.d}")
        if not self.runs:
            raise ConfigError("runs must not be empty")
        if not (np.isfinite(self.init_scale) and self.init_scale > 0):
            raise ConfigError(f"init_scale must be > 0, got {self.init_scale}")
        for run in self.runs:
            if run.algorithm not in ("gd", "sgd"):
                raise ConfigError(f"run {run.name()!r}: algorithm must be 'gd' or 'sgd', got {run.algorithm!r}")
            run.schedule.validate()

    def quick(self) -> "DiagConfig":
        """The same experiment with 20x fewer iterations (same figure shape), for CI; the sharpness, the
        dearest metric, at 10 points at most."""
        return dataclasses.replace(self, iterations=self.iterations // 20 + 1,
                                   sharpness_points=min(self.sharpness_points, 10))


def run(config: DiagConfig, n_seeds: int = 5, progress=None) -> dict:
    """Train every run of `config` (batched over runs and seeds) and return the results dict."""
    config.validate()
    data = sparse_regression(config.n, config.d, config.r, config.n_test, config.data_seed)
    x_eval = data.x_test[: 2 * config.d]
    jacobian_rank = metrics.DiagNetJacobianRank(x_eval, config.rank_tol)
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    steps = np.stack([r.schedule.values(config.iterations) for r in config.runs])
    sharp_at = set(sharpness_columns(len(grid), config.sharpness_points).tolist())

    def evaluate(algorithm, u, v, calls):
        column = calls[algorithm] = calls.get(algorithm, -1) + 1  # train_runs evaluates each grid point in turn
        beta = u * v
        values = {
            "train_loss": diag_nets.loss(data.x_train, data.y_train, beta),
            "test_loss": diag_nets.loss(data.x_test, data.y_test, beta),
            "l0_norm": metrics.l0_norm(beta, config.l0_threshold),
            "jacobian_rank": jacobian_rank(u, v),
        }
        if config.sharpness_points:
            values["sharpness"] = np.full(len(u), np.nan)
            finite = np.flatnonzero(np.isfinite(values["train_loss"]))  # a diverged row's sharpness means nothing
            if finite.size and column in sharp_at:
                values["sharpness"][finite] = diag_net_sharpness(data.x_train, data.y_train, u[finite], v[finite])
        return values

    def train_batch(run_ids, seeds):
        calls = {}
        return diag_nets.train_runs(data.x_train, data.y_train, steps[run_ids],
                                    [config.runs[r].algorithm for r in run_ids], seeds, grid,
                                    lambda algorithm, u, v: evaluate(algorithm, u, v, calls),
                                    config.init_scale, progress)

    stochastic = [r.algorithm == "sgd" for r in config.runs]
    rows, seconds = train_until_survivors(train_batch, stochastic, n_seeds)
    runs = []
    for spec, run_rows, is_stochastic in zip(config.runs, rows, stochastic):
        record = run_record(spec.name(), {
            "algorithm": spec.algorithm,
            "schedule": to_dict(spec.schedule),
            "decay_iterations": spec.schedule.decay_iterations(config.iterations),
        }, run_rows, grid, deterministic=not is_stochastic)
        runs.append(record)
    return {"config": to_dict(config), "n_seeds": n_seeds, "runs": runs, "seconds": seconds,
            "beta_star_support": int(config.r)}


def title(results: dict) -> str:
    """The figure's title from the results' config and which algorithms its runs use."""
    cfg = results["config"]
    algorithms = {run["algorithm"] for run in results["runs"]}
    what = ("SGD with large steps, decayed at different points" if algorithms == {"sgd"} else
            "GD with large steps vs SGD" if algorithms == {"gd", "sgd"} else "GD with large steps")
    return f"Diagonal linear nets (n={cfg['n']}, d={cfg['d']}, r={cfg['r']}): {what}"


def figures(results: dict) -> dict:
    """Train and test loss, the Jacobian rank and the l0 norm of beta, as far as the results record them."""
    recorded = recorded_curves(results)
    # full-batch GD's train loss falls to ~1e-31 at each decay: cut the axis so the other runs stay legible
    gd = any(run["algorithm"] == "gd" for run in results["runs"])
    specs = [
        {"metric": "train_loss", "log": True, "title": "train loss (cut at 1e-5)" if gd else "train loss",
         "ylim": (1e-5, 1) if gd else None},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "jacobian_rank", "title": "Jacobian rank"},
        {"metric": "l0_norm", "title": r"$\ell_0$ norm of $\beta$ (lower is sparser)"},
    ]
    specs = [s for s in specs if s["metric"] in recorded]
    figs = {results["experiment"]: panels(results, specs, suptitle=title(results))}
    if "sharpness" in recorded:
        figs[f"{results['experiment']}_sharpness"] = sharpness_figure(results)
    return figs


def _decayed(algorithm, lr, fraction, factor):
    return DiagRun("", algorithm, Schedule(lr, ((fraction, factor),)))


DIAG_SGD = Experiment(
    name="diag_sgd",
    title="Diagonal nets: SGD with large steps, decayed at different points",
    config=DiagConfig(
        n=80, d=200, r=20, iterations=100_001,
        runs=(
            DiagRun("", "sgd", Schedule(0.25)),
            _decayed("sgd", 0.282, 0.1, 4.8),
            _decayed("sgd", 0.282, 0.3, 3.4),
            _decayed("sgd", 0.282, 0.5, 1.5),
        ),
        sharpness_points=40,
    ),
    run=run,
    figures=figures,
)

DIAG_GD = Experiment(
    name="diag_gd",
    title="Diagonal nets: GD with large steps vs SGD",
    config=DiagConfig(
        n=40, d=100, r=20, iterations=100_001,
        runs=(
            DiagRun("", "gd", Schedule(2.0)),
            _decayed("gd", 3.53, 0.1, 4.8),
            _decayed("gd", 3.53, 0.3, 3.4),
            _decayed("gd", 3.53, 0.5, 1.5),
            _decayed("sgd", 0.266, 0.5, 20.0),
        ),
    ),
    run=run,
    figures=figures,
)
