"""`diag_sgd` and `diag_gd`: diagonal linear nets on sparse regression, large steps then decays.

The paper's claim: SGD with a large step, kept longer before its decay, reaches a sparser beta (lower l0),
a lower Jacobian rank and a lower test loss; GD with large steps also stabilizes the loss but gets no
sparsity benefit.  `python -m largestep reproduce diag_sgd diag_gd` (about 20 s and 2 s here, 5 seeds);
narrated in diag_nets.ipynb.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import diag_nets, metrics
from ..claims import Claim, all_of, every_seed_within, medians_below, medians_fall, seeds_below, sharpness_above
from ..config import ConfigError, check_keys, to_dict
from ..data import sparse_regression
from ..plotting import panels, recorded_curves, sharpness_figure
from ..results import fail, require, require_config
from ..schedules import Schedule
from ..seeds import SEED_POLICIES, evaluation_grid, measure_survivors, run_record, train_seeds
from ..sharpness import diag_net_sharpness, sharpness_columns, sharpness_finals
from . import Experiment


@dataclass(frozen=True)
class DiagRun:
    key: str  # the run's name in claims ("constant", "early", ...), whatever its schedule
    algorithm: str  # "gd" (full batch, deterministic) or "sgd" (batch size 1)
    schedule: Schedule
    label: str = ""  # "" = derived from the algorithm and schedule, so that edits (--set) show in legends

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
    seed_policy: str = "survivors"  # or "tries": n seeds tried per run whatever diverges (phase maps)

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
        if self.seed_policy not in SEED_POLICIES:
            raise ConfigError(f"seed_policy must be one of {', '.join(SEED_POLICIES)}, got {self.seed_policy!r}")
        if not (np.isfinite(self.init_scale) and self.init_scale > 0):
            raise ConfigError(f"init_scale must be > 0, got {self.init_scale}")
        check_runs(self.runs)

    def labels(self) -> list[str]:
        return [run.name() for run in self.runs]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """A lower bound on the bytes of the first training round, and the fields that set it: the data, and
        per row (run x seed) its step sizes and SGD sample stream, parameters, curves and Jacobian."""
        rows = len(self.runs) * n_seeds
        grid = self.grid_early + self.grid_spaced
        data = 8 * (self.n + self.n_test) * self.d
        per_row = 8 * (2 * self.iterations + 4 * grid + 4 * self.d + 2 * self.d * self.d)
        return data + rows * per_row, "n, d, n_test, iterations, grid sizes, runs"

    def quick(self) -> "DiagConfig":
        """The same experiment with 20x fewer iterations (same figure shape), for CI; the sharpness, the
        dearest metric, at 10 points at most."""
        return dataclasses.replace(self, iterations=self.iterations // 20 + 1,
                                   sharpness_points=min(self.sharpness_points, 10))


def check_runs(runs) -> None:
    """A diag config's runs: at least one, keys distinct, each algorithm and schedule valid."""
    check_keys(runs)
    for run in runs:
        if run.algorithm not in ("gd", "sgd"):
            raise ConfigError(f"run {run.name()!r}: algorithm must be 'gd' or 'sgd', got {run.algorithm!r}")
        try:
            run.schedule.validate()
        except ConfigError as err:
            raise ConfigError(f"run {run.name()!r}: {err}") from None


def run(config: DiagConfig, n_seeds: int = 5, progress=None) -> dict:
    """Train every run of `config` (batched over runs and seeds); the results' runs, seconds and data facts."""
    data = sparse_regression(config.n, config.d, config.r, config.n_test, config.data_seed)
    x_eval = data.x_test[: 2 * config.d]
    jacobian_rank = metrics.DiagNetJacobianRank(x_eval, config.rank_tol)
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    steps = np.stack([r.schedule.values(config.iterations) for r in config.runs])
    sharp_at = set(sharpness_columns(grid, config.sharpness_points, config.iterations).tolist())

    def evaluate(algorithm, u, v, calls, with_sharpness):
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
            if with_sharpness and finite.size and column in sharp_at:
                values["sharpness"][finite] = diag_net_sharpness(data.x_train, data.y_train, u[finite], v[finite])
        return values

    def train_batch(run_ids, seeds, with_sharpness=False):
        calls = {}
        batch = diag_nets.train_runs(data.x_train, data.y_train, steps[run_ids],
                                     [config.runs[r].algorithm for r in run_ids], seeds, grid,
                                     lambda algorithm, u, v: evaluate(algorithm, u, v, calls, with_sharpness),
                                     config.init_scale, progress)
        if config.sharpness_points:
            batch.final.update(sharpness_finals(batch.curves["sharpness"], grid, steps[run_ids], config.iterations))
        return batch

    stochastic = [r.algorithm == "sgd" for r in config.runs]
    rows, seconds = train_seeds(config.seed_policy, train_batch, stochastic, n_seeds)
    if config.sharpness_points:  # the dearest metric, on the surviving seeds only: trained again, measured
        spent = measure_survivors(rows, lambda ids, seeds: train_batch(ids, seeds, with_sharpness=True),
                                  ["sharpness"])
        seconds = {k: seconds.get(k, 0.0) + spent.get(k, 0.0) for k in {*seconds, *spent}}
    runs = []
    for spec, run_rows, is_stochastic in zip(config.runs, rows, stochastic):
        record = run_record(spec.key, spec.name(), {
            "algorithm": spec.algorithm,
            "schedule": to_dict(spec.schedule),
            "decay_iterations": spec.schedule.decay_iterations(config.iterations),
        }, run_rows, grid, deterministic=not is_stochastic)
        runs.append(record)
    return {"runs": runs, "seconds": seconds, "beta_star_support": int(config.r)}


def check(results: dict) -> None:
    """The fields the figures read, for `experiments.load`."""
    require_config(results, DiagConfig)
    for k, run in enumerate(results["runs"]):
        if require(run, "algorithm", str, "'gd' or 'sgd'", f"runs.{k}") not in ("gd", "sgd"):
            raise fail(f"runs.{k}.algorithm", "'gd' or 'sgd'", run["algorithm"])
        require_config(run, Schedule, "schedule", f"runs.{k}")


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
    specs = [  # full-batch GD's train loss falls to ~1e-31 after its decays: shown whole, on its log axis
        {"metric": "train_loss", "log": True, "title": "train loss"},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "jacobian_rank", "title": "Jacobian rank"},
        {"metric": "l0_norm", "title": r"$\ell_0$ norm of $\beta$ (lower is sparser)"},
    ]
    specs = [s for s in specs if s["metric"] in recorded]
    figs = {results["experiment"]: panels(results, specs, suptitle=title(results))}
    if "sharpness" in recorded:
        figs[f"{results['experiment']}_sharpness"] = sharpness_figure(results, title(results))
    return figs


def _decayed(key, algorithm, lr, fraction, factor):
    return DiagRun(key, algorithm, Schedule(lr, ((fraction, factor),)))


DIAG_SGD = Experiment(
    name="diag_sgd",
    title="Diagonal nets: SGD with large steps, decayed at different points",
    config=DiagConfig(
        n=80, d=200, r=20, iterations=100_001,
        runs=(
            DiagRun("constant", "sgd", Schedule(0.25)),
            _decayed("early", "sgd", 0.282, 0.1, 4.8),
            _decayed("middle", "sgd", 0.282, 0.3, 3.4),
            _decayed("late", "sgd", 0.282, 0.5, 1.5),
        ),
        sharpness_points=40,
    ),
    run=run,
    claims=(
        Claim("the constant run keeps every coordinate: ℓ0 of β = d in every surviving seed", True,
              every_seed_within("l0_norm", "constant", low="d", fmt=".4g")),
        Claim("the longer the large-step phase, the sparser β: median ℓ0 falls from the {early.at} to the "
              "{middle.at} to the {late.at} decay", True, medians_fall("l0_norm", ["early", "middle", "late"], ".4g")),
        Claim("every decayed run is sparser (median ℓ0) than the constant run", True,
              medians_below("l0_norm", ["early", "middle", "late"], "constant", ".4g")),
        Claim("the Jacobian rank (median) falls from the constant run to the {early.at}, {middle.at} and "
              "{late.at} decays", True, medians_fall("jacobian_rank", ["constant", "early", "middle", "late"], ".4g")),
        Claim("the constant run ends with a higher test loss than every decayed run, in every seed", True,
              seeds_below("test_loss", ["early", "middle", "late"], "constant")),
        Claim("test loss falls with the decay point: median {early.at} > {middle.at} > {late.at}", False,
              medians_fall("test_loss", ["early", "middle", "late"])),
        Claim("no surviving seed's sharpness exceeds 2/η of its step, early or later, in any run", False,
              all_of(sharpness_above(["constant", "early", "middle", "late"], "early", none=True),
                     sharpness_above(["constant", "early", "middle", "late"], "later", none=True)), paper=False,
              uses=("sharpness",)),
    ),
    notebook="diag_nets.ipynb",
    headline=("l0_norm", "jacobian_rank", "test_loss"),
)

DIAG_GD = Experiment(
    name="diag_gd",
    title="Diagonal nets: GD with large steps vs SGD",
    config=DiagConfig(
        n=40, d=100, r=20, iterations=100_001,
        runs=(
            DiagRun("gd_small", "gd", Schedule(2.0)),
            _decayed("gd_early", "gd", 3.53, 0.1, 4.8),
            _decayed("gd_middle", "gd", 3.53, 0.3, 3.4),
            _decayed("gd_late", "gd", 3.53, 0.5, 1.5),
            _decayed("sgd", "sgd", 0.266, 0.5, 20.0),
        ),
    ),
    run=run,
    claims=(
        Claim("GD with large steps gains nothing: every η={gd_early.lr} GD run ends with a higher test loss than GD "
              "η={gd_small.lr}", True, seeds_below("test_loss", "gd_small", ["gd_early", "gd_middle", "gd_late"])),
        Claim("every surviving SGD seed ends sparser (ℓ0 of β) than every GD run", True,
              seeds_below("l0_norm", "sgd", ["gd_small", "gd_early", "gd_middle", "gd_late"], fmt=".4g")),
        Claim("every surviving SGD seed ends with a lower test loss than every GD run", True,
              seeds_below("test_loss", "sgd", ["gd_small", "gd_early", "gd_middle", "gd_late"])),
    ),
    notebook="diag_nets.ipynb",
    headline=("test_loss", "l0_norm"),
)
