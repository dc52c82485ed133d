"""ReLU nets: `relu_1d`, `relu_1d_overreg` (1-D regression), `relu_two_layer`, `relu_multi_layer` (teacher-student).

The paper's claim: a longer large-step phase gives fewer distinct active neurons, a lower Jacobian rank, sparser
features and (teacher-student) a lower test loss; in 1-D a simpler interpolant, and with a stronger warmup
(`relu_1d_overreg`) over-regularization.  `python -m largestep reproduce relu_1d relu_1d_overreg relu_two_layer
relu_multi_layer` (a few seconds each here, 5 seeds); narrated in fc_nets_1d_regression.ipynb,
fc_nets_two_layer.ipynb and fc_nets_multi_layer.ipynb.

One config class covers the four: the data (the 12 points of the 1-D regression, or a teacher on the unit
sphere), the student (hidden widths, biases, initialization) and the runs (step-size schedules).  All
runs and seeds of an experiment train as one batched program (`relu_nets.train`); metrics are recorded
on the evaluation grid for every row that has not diverged.  Sections: config, run, figures, the experiments
and their claims.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import metrics, relu_nets, seeds
from ..claims import (Claim, collapse_only_with, median_at_most, median_below, median_below_other, medians_below,
                      medians_fall, sharpness_above)
from ..config import ConfigError, check_keys, to_dict
from ..data import Regression, relu_1d_points, teacher_student
from ..plotting import (as_array, figure_style, legend_below, panels, plot_metric, recorded_curves, run_colors,
                        run_label, sharpness_figure, survival_note, titled)
from ..results import NotResults, fail, require, require_config, require_grid, require_numbers
from ..schedules import Schedule, Warmup
from ..seeds import SEED_POLICIES, Batch, evaluation_grid, measure_survivors, run_record, train_seeds
from ..sharpness import relu_net_sharpness, sharpness_columns, sharpness_finals
from ..streams import numpy_stream
from . import Experiment

# A seed "underfits" (stalls) when its final train loss stays above this (the 1-D labels' variance is ~1.4).
UNDERFIT_LOSS = 0.01


@dataclass(frozen=True)
class ReluRun:
    key: str  # the run's name in claims ("small", "early", ...), whatever its schedule
    schedule: Schedule
    label: str = ""  # "" = derived from the schedule, so that edits (--set) show in legends

    def name(self) -> str:
        return self.label or self.schedule.describe()


@dataclass(frozen=True)
class ReluConfig:
    task: str  # "1d" (the 12 points; train set = test set) or "teacher_student"
    widths: tuple[int, ...]  # hidden widths of the student
    iterations: int
    runs: tuple[ReluRun, ...]
    biases: bool = False  # a bias on every hidden layer (PyTorch's default init, U(+-1/sqrt(fan_in)))
    output_bias: bool = False  # a bias on the output too (the paper's multi-layer nets; not its two-layer ones)
    init: str = "gaussian"  # "gaussian" (scales below) or "1d" (w = 2.5 * (+-1), b = 2.5 N(0,1), a = 4 N(0,1))
    init_scale: float = 1.0  # hidden weights ~ init_scale * N(0, 1)
    output_init_scale: float | None = None  # two-layer output weights ~ this * N(0, 1); None: as init_scale
    d: int = 1
    n: int = 12
    n_test: int = 1000
    teacher_widths: tuple[int, ...] = ()
    teacher_biases: bool = False  # a bias on every teacher layer (PyTorch's default init, as the paper's)
    data_seed: int = 0  # teacher-student: the paper's streams seeded data_seed + 1 (its draw: 0 two-layer, 5 multi)
    corr_threshold: float = 0.99  # feature sparsity de-duplication
    rank_tol: float = 1e-4
    rank_points: int = 0  # 0: as many test points as the net has parameters; else uniform over the data's x range
    grid_early: int = 100
    grid_spaced: int = 150
    snapshot_fractions: tuple[float, ...] = ()  # predictor snapshots (1-D): after floor(f * T) updates
    neuron_movement: bool = False  # keep first-layer weights at init and end (two-layer, d = 2)
    sharpness_points: int = 0  # > 0: the train loss's top Hessian eigenvalue at this many grid iterations
    seed_policy: str = "survivors"  # or "tries": n seeds tried per run whatever diverges (phase maps)

    def validate(self) -> None:
        if self.task not in ("1d", "teacher_student"):
            raise ConfigError(f"task must be '1d' or 'teacher_student', got {self.task!r}")
        if self.init not in ("gaussian", "1d"):
            raise ConfigError(f"init must be 'gaussian' or '1d', got {self.init!r}")
        if not self.widths:
            raise ConfigError("widths must list at least one hidden layer width, got an empty list")
        if any(w < 1 for w in self.widths):
            raise ConfigError(f"hidden widths must be >= 1, got {list(self.widths)}")
        if self.init == "1d" and not self.biases:
            raise ConfigError("init '1d' draws a first-layer bias: set biases=True")
        if self.init == "1d" and (len(self.widths) != 1 or self.d != 1):
            raise ConfigError("init '1d' is the two-layer net on 1-D inputs: widths must have one entry and d = 1")
        for name in ("iterations", "d", "n", "n_test", "grid_spaced"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("data_seed", "rank_points", "grid_early", "sharpness_points"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.data_seed >= 2**32:
            raise ConfigError(f"data_seed must be < 2**32, got {self.data_seed}")
        for name in ("init_scale", "output_init_scale"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < np.inf:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
        if self.task == "teacher_student":
            if not self.teacher_widths or any(w < 1 for w in self.teacher_widths):
                raise ConfigError(f"teacher_widths must be non-empty and >= 1, got {list(self.teacher_widths)}")
            if self.rank_points == 0 and self.n_parameters() > self.n_test:
                raise ConfigError(f"the Jacobian rank uses as many test points as parameters "
                                  f"({self.n_parameters()}): n_test must be at least that")
        if self.seed_policy not in SEED_POLICIES:
            raise ConfigError(f"seed_policy must be one of {', '.join(SEED_POLICIES)}, got {self.seed_policy!r}")
        if not (0 < self.corr_threshold <= 1):
            raise ConfigError(f"corr_threshold must lie in (0, 1], got {self.corr_threshold}")
        if not (0 < self.rank_tol < 1):
            raise ConfigError(f"rank_tol must lie in (0, 1), got {self.rank_tol}")
        if not all(0 <= f <= 1 for f in self.snapshot_fractions):
            raise ConfigError(f"snapshot fractions must lie in [0, 1], got {list(self.snapshot_fractions)}")
        if self.neuron_movement and (self.d != 2 or len(self.widths) != 1):
            raise ConfigError("neuron_movement draws first-layer weights in the plane: needs d = 2 and one hidden layer")
        check_keys(self.runs)
        for run in self.runs:
            try:
                run.schedule.validate()
                if len(run.schedule.decays) > self.iterations:
                    raise ConfigError(f"{len(run.schedule.decays)} decays but only {self.iterations} iterations")
                warmup = run.schedule.warmup
                if warmup is not None and run.schedule.decays and warmup.until > min(f for f, _ in run.schedule.decays):
                    raise ConfigError(f"the warmup (until {warmup.until}) must end before the first decay")
            except ConfigError as err:
                raise ConfigError(f"run {run.name()!r}: {err}") from None

    def labels(self) -> list[str]:
        return [run.name() for run in self.runs]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """A lower bound on the bytes of the first training round, and the fields that set it: per row (run x
        seed) its step sizes and sample stream, curves, parameters, hidden features on the train and test sets,
        and its per-example gradients on the Jacobian's points."""
        rows, params = len(self.runs) * n_seeds, self.n_parameters()
        points = self.rank_points or params
        grid = self.grid_early + self.grid_spaced
        per_row = 8 * (2 * self.iterations + 8 * grid + params * (2 + points)
                       + (self.n + self.n_test) * sum(self.widths))
        return 8 * (self.n + self.n_test) * self.d + rows * per_row, \
            "widths, d, n, n_test, rank_points, iterations, grid sizes, runs"

    def n_parameters(self) -> int:
        sizes = [self.d, *self.widths, 1]
        biases = [self.biases] * len(self.widths) + [self.output_bias]
        return sum(a * b + (b if bias else 0) for a, b, bias in zip(sizes[:-1], sizes[1:], biases))

    def quick(self) -> "ReluConfig":
        """The same experiment with 20x fewer iterations (same figure shape), for CI; the sharpness, the
        dearest metric, at 10 points at most."""
        return dataclasses.replace(self, iterations=self.iterations // 20 + 1,
                                   sharpness_points=min(self.sharpness_points, 10))


def make_student(config: ReluConfig, seed: int) -> list:
    """The student net of training seed `seed` (R = 1); every schedule of a seed starts from it."""
    rng = relu_nets.init_rng(seed)
    if config.init == "1d":
        layers = relu_nets.two_layer_1d(rng, config.widths[0])
    elif len(config.widths) == 1:
        out_scale = config.init_scale if config.output_init_scale is None else config.output_init_scale
        layers = relu_nets.two_layer_gaussian(rng, config.d, config.widths[0], config.init_scale, out_scale)
        if config.biases:
            layers[0] = (layers[0][0], rng.uniform(-1, 1, (1, config.widths[0])) / np.sqrt(config.d))
    else:
        layers = relu_nets.multi_layer_gaussian(rng, config.d, config.widths, config.init_scale, config.biases)
    w_out, b_out = layers[-1]
    if config.output_bias and b_out is None:  # drawn last, so it leaves the other weights of the seed unchanged
        b_out = rng.uniform(-1, 1, (1, 1)) / np.sqrt(config.widths[-1])
    layers[-1] = (w_out, b_out if config.output_bias else None)
    return layers


def make_data(config: ReluConfig) -> Regression:
    if config.task == "1d":
        return relu_1d_points()
    return teacher_student(config.n, config.n_test, config.d, config.teacher_widths, config.teacher_biases,
                           config.data_seed)


def rank_points(config: ReluConfig, data: Regression) -> np.ndarray:
    if config.rank_points:  # uniform over the data's x range (1-D), drawn from the data seed
        rng = numpy_stream("rank_points", config.data_seed)
        lo, hi = data.x_train.min(0), data.x_train.max(0)
        return np.sort(rng.uniform(lo, hi, (config.rank_points, config.d)), axis=0)
    return data.x_test[: config.n_parameters()]


def feature_names(config: ReluConfig) -> list[str]:
    if len(config.widths) == 1:
        return ["feature_sparsity"]
    return [f"feature_sparsity_layer{l + 1}" for l in range(len(config.widths))]


def run(config: ReluConfig, n_seeds: int = 5, progress=None) -> dict:
    """Train every run of `config` (batched over runs and seeds); the results' runs, seconds and data."""
    data = make_data(config)
    x_rank = rank_points(config, data)
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    grid_column = {int(k): g for g, k in enumerate(grid)}
    snapshot_its = sorted({int(np.floor(f * config.iterations)) for f in config.snapshot_fractions})
    x_plot = _plot_inputs(data) if snapshot_its else None
    stops = np.unique(np.concatenate([grid, snapshot_its])).astype(np.int64)
    steps = np.stack([r.schedule.values(config.iterations) for r in config.runs])
    names = ["train_loss", "test_loss", "jacobian_rank", *feature_names(config)]
    if len(config.widths) > 1:
        names.append("effective_rank")
    if config.sharpness_points:
        names.append("sharpness")
    sharp_at = set(grid[sharpness_columns(grid, config.sharpness_points, config.iterations)].tolist())

    def train_batch(run_ids, seeds, with_sharpness=False):
        layers = relu_nets.stack([make_student(config, int(s)) for s in seeds])
        rows = len(seeds)
        curves = {name: np.full((rows, len(grid)), np.nan) for name in names}
        diverged = np.zeros(rows, bool)
        snapshots = np.full((rows, len(snapshot_its), 0 if x_plot is None else len(x_plot)), np.nan)
        first_layer = {}

        def on_stop(k):
            if k in grid_column:
                values = evaluate(config, data, x_rank, layers, diverged, sharpness=with_sharpness and k in sharp_at)
                for name, v in values.items():
                    curves[name][:, grid_column[k]] = v
            if k in snapshot_its:
                snapshots[:, snapshot_its.index(k)] = relu_nets.predict(layers, x_plot)
            if config.neuron_movement and k in (0, config.iterations):
                first_layer[k] = (layers[0][0].copy(), layers[-1][0][:, 0].copy())

        seconds = relu_nets.train(layers, data.x_train, data.y_train, steps[run_ids], seeds, stops, on_stop,
                                  progress, stopped=diverged)  # a row flagged diverged is trained no further
        extras = {}
        if snapshot_its:
            extras["snapshots"] = list(snapshots)
        if config.neuron_movement:
            extras["first_layer_init"] = list(first_layer[0][0])
            extras["first_layer_final"] = list(first_layer[config.iterations][0])
            extras["output_weights_final"] = list(first_layer[config.iterations][1])
        # a finite but exploded loss is no survivor: the net ran away without overflowing float32
        with np.errstate(invalid="ignore"):
            exploded = ~diverged & (curves["test_loss"][:, -1] > EXPLODED * curves["test_loss"][:, 0])
        diverged |= exploded
        batch = Batch(curves=curves, diverged=diverged, extras=extras, seconds=seconds,
                      collapsed=collapsed(curves, feature_names(config)))
        if config.sharpness_points:
            batch.final.update(sharpness_finals(curves["sharpness"], grid, steps[run_ids], config.iterations))
        return batch

    rows, seconds = train_seeds(config.seed_policy, train_batch, [True] * len(config.runs), n_seeds)
    if config.sharpness_points:  # the dearest metric, on the surviving seeds only: trained again, measured
        spent = measure_survivors(rows, lambda ids, seeds: train_batch(ids, seeds, with_sharpness=True),
                                  ["sharpness"])
        seconds = {k: seconds.get(k, 0.0) + spent.get(k, 0.0) for k in {*seconds, *spent}}
    runs = [run_record(spec.key, spec.name(), {
        "schedule": to_dict(spec.schedule),
        "decay_iterations": spec.schedule.decay_iterations(config.iterations),
    }, run_rows, grid) for spec, run_rows in zip(config.runs, rows)]
    results = {"runs": runs, "seconds": seconds, "n_parameters": config.n_parameters(),
               "data": {"x_train": data.x_train, "y_train": data.y_train}}
    if snapshot_its:
        results["snapshot_iterations"] = snapshot_its
        results["snapshot_x"] = x_plot[:, 0]
    if config.neuron_movement:
        teacher = data.extras["teacher"]
        results["teacher_neurons"] = teacher[0][0].astype(np.float64)
        results["teacher_output_weights"] = teacher[1][0][0].astype(np.float64)
    return results


EXPLODED = 1e3  # a final test loss this many times the initial one: the net ran away, counted as diverged


def collapsed(curves: dict, sparsity_names: list[str]) -> np.ndarray:
    """Rows whose net died: at the end some hidden layer has no neuron active on any training example (its
    feature sparsity is exactly 0), so the net outputs a constant and learns nothing more.  The rule that separates
    collapsed seeds from those that learn: in relu_multi_layer's 48-seed runs, the seeds with a dead layer are
    exactly those whose train loss stayed at the labels' variance (the constant predictor's loss) or above, while
    every other seed ended far below it; a dead layer would otherwise count as perfectly sparse."""
    finals = np.stack([curves[name][:, -1] for name in sparsity_names])
    return (finals == 0).any(0)


def evaluate(config: ReluConfig, data: Regression, x_rank: np.ndarray, layers: list, diverged: np.ndarray,
             sharpness: bool = False) -> dict:
    """Metrics of the R nets at one grid point; rows diverged (now or before) get NaN and are flagged.
    sharpness: compute it here too (else NaN, where the config records it at other grid points)."""
    with np.errstate(over="ignore", invalid="ignore"):  # a diverged row's features: flagged below
        train_features = relu_nets.hidden_features(layers, data.x_train)
    train_loss = relu_nets.mse(layers, data.x_train, data.y_train, train_features)
    diverged |= seeds.diverged(train_loss, seeds.FLOAT32_OVERFLOW)
    alive = np.flatnonzero(~diverged)
    rows = len(train_loss)
    values = {"train_loss": np.where(diverged, np.nan, train_loss)}
    for name in ["test_loss", "jacobian_rank", *feature_names(config)] \
            + (["effective_rank"] if len(config.widths) > 1 else []) + (["sharpness"] if config.sharpness_points else []):
        values[name] = np.full(rows, np.nan)
    if alive.size == 0:
        return values
    alive_layers = [(w[alive], None if b is None else b[alive]) for w, b in layers]
    # A row's numbers do not depend on the rows computed with it: the diverged ones are left out.
    values["test_loss"][alive] = train_loss[alive] if config.task == "1d" else relu_nets.mse(
        alive_layers, data.x_test, data.y_test)
    values["jacobian_rank"][alive] = metrics.rank_from_jacobian(
        relu_nets.jacobian_factor(alive_layers, x_rank), config.rank_tol)
    features = [phi[alive] for phi in train_features]
    if len(set(config.widths)) == 1:  # every layer in one batched call
        sparsity = metrics.feature_sparsity(np.stack(features), config.corr_threshold)
    else:
        sparsity = [metrics.feature_sparsity(phi, config.corr_threshold) for phi in features]
    for name, value in zip(feature_names(config), sparsity):
        values[name][alive] = value
    if len(config.widths) > 1:  # last hidden layer on the Jacobian evaluation points
        values["effective_rank"][alive] = metrics.effective_rank(relu_nets.hidden_features(alive_layers, x_rank)[-1])
    if sharpness:
        values["sharpness"][alive] = relu_net_sharpness(alive_layers, data.x_train, data.y_train)
    return values


def _plot_inputs(data: Regression) -> np.ndarray:
    lo, hi = data.x_train.min(), data.x_train.max()
    pad = 0.05 * (hi - lo)
    return np.linspace(lo - pad, hi + pad, 241)[:, None]


def check(results: dict) -> None:
    """The fields the figures read, for `experiments.load`."""
    config = require_config(results, ReluConfig)
    for k, run in enumerate(results["runs"]):
        require_config(run, Schedule, "schedule", f"runs.{k}")
        extras = run.get("extras", {})
        if not isinstance(extras, dict):
            raise fail(f"runs.{k}.extras", "an object", extras)
        for name, values in extras.items():
            require(extras, name, list, "a list, one entry per surviving seed", f"runs.{k}.extras")
    if "snapshot_x" in results:
        require_numbers(results["snapshot_x"], "snapshot_x", 1)
        snapshots = require(results, "snapshot_iterations", list, "a list of iterations")
        require_numbers(snapshots, "snapshot_iterations", 1)
        data = require(results, "data", dict, "an object (x_train, y_train)")
        require_grid(require(data, "x_train", list, "a list of inputs", "data"), "data.x_train",
                     len(data["x_train"]), 1)
        require_numbers(require(data, "y_train", list, "a list of labels", "data"), "data.y_train", 1)
        for k, run in enumerate(results["runs"]):
            for j, snaps in enumerate(run.get("extras", {}).get("snapshots", [])):
                require_grid(snaps, f"runs.{k}.extras.snapshots.{j}", len(snapshots), len(results["snapshot_x"]))
    if "teacher_neurons" in results:
        require_grid(results["teacher_neurons"], "teacher_neurons", len(results["teacher_neurons"]), 2, finite=True)
        width = config.widths[0]
        for k, run in enumerate(results["runs"]):
            extras = run.get("extras", {})
            for name, shape in (("first_layer_init", (width, 2)), ("first_layer_final", (width, 2))):
                for j, weights in enumerate(extras.get(name, [])):
                    require_grid(weights, f"runs.{k}.extras.{name}.{j}", *shape, finite=True)
            for j, weights in enumerate(extras.get("output_weights_final", [])):
                require_numbers(weights, f"runs.{k}.extras.output_weights_final.{j}", 1, finite=True)
            lengths = {len(extras.get(name, [])) for name in ("first_layer_init", "first_layer_final",
                                                               "output_weights_final")}
            if extras and lengths != {len(run["seeds"])}:
                raise NotResults(f"field 'runs.{k}.extras': one set of weights per surviving seed")


# ---------------------------------------------------------------- figures

# What each of the paper's experiments shows, in words; the numbers come from the config.
TAGLINES = {
    "relu_1d": "short vs long large-step phase",
    "relu_1d_overreg": "stronger warmup (over-regularization)",
    "relu_two_layer": "large steps, decayed at different points",
    "relu_multi_layer": "warmup, large steps, one decay",
}
_LAYERS = {2: "Two", 3: "Three", 4: "Four", 5: "Five"}


def title(results: dict) -> str:
    """'Two-layer ReLU net (width 100), 1-D regression on 12 points: <tagline>' from the results' config."""
    cfg = results["config"]
    widths = list(cfg["widths"])
    layers = _LAYERS.get(len(widths) + 1, str(len(widths) + 1))
    net = f"{layers}-layer ReLU net (width{'s' if len(widths) > 1 else ''} {', '.join(map(str, widths))})"
    if cfg["task"] == "1d":
        task = f"1-D regression on {cfg['n']} points"
    else:
        teacher = ", ".join(map(str, cfg["teacher_widths"]))
        task = f"teacher-student, d={cfg['d']}, n={cfg['n']}, teacher widths {teacher}"
    tagline = TAGLINES.get(results.get("experiment"))
    return f"{net}, {task}" + (f": {tagline}" if tagline else "")


def _legend_and_title(fig, axes, results, text, note=None):
    """Legend below the panels and title above."""
    legend_below(fig, *axes[0].get_legend_handles_labels())
    note = survival_note(results) if note is None else note
    fig.suptitle(titled(results, text) + ("\n" + note if note else ""), fontsize=11)


def _seed_lines(ax, results, metric, log=False, title=None):
    """Every surviving seed as a thin line (stalled seeds stay visible), the median bold."""
    plot_metric(ax, results, metric, log=log, title=title)
    for run, color in zip(results["runs"], run_colors(len(results["runs"]))):
        values = np.atleast_2d(as_array(run["curves"].get(metric, [])))
        for row in values if values.size else []:
            ax.plot(run["curves"]["iteration"], row, color=color, lw=0.6, alpha=0.6)


def _figures_1d(results: dict) -> dict:
    import matplotlib.pyplot as plt

    name = results["experiment"]
    x_data = np.asarray(results["data"]["x_train"], float)[:, 0]
    y_data = np.asarray(results["data"]["y_train"], float)
    x_plot = np.asarray(results["snapshot_x"], float)
    colors = run_colors(len(results["runs"]))
    with figure_style():
        fig, axes = plt.subplots(1, 4, figsize=(14.4, 3.7), layout="constrained")
        _seed_lines(axes[0], results, "train_loss", log=True, title="train loss (each seed thin)")
        ax = axes[1]
        for run, color in zip(results["runs"], colors):
            for s, snaps in enumerate(run.get("extras", {}).get("snapshots", [])):
                ax.plot(x_plot, np.asarray(snaps, float)[-1], color=color, lw=1.4 if s == 0 else 0.6,
                        alpha=1.0 if s == 0 else 0.4)
        ax.scatter(x_data, y_data, color="k", zorder=5, s=14, label="data")
        ax.set_ylim(y_data.min() - 2, y_data.max() + 2)
        ax.set_title("final predictor (first seed bold)")
        ax.set_xlabel("x")
        plot_metric(axes[2], results, "jacobian_rank", title="Jacobian rank")
        plot_metric(axes[3], results, "feature_sparsity", title="feature sparsity (lower is sparser)")
        _legend_and_title(fig, axes, results, title(results))
        figs = {name: fig}

        iters = results["snapshot_iterations"]
        snap, sax = plt.subplots(1, len(iters), figsize=(2.9 * len(iters), 3.4), layout="constrained")
        sax = np.atleast_1d(sax)
        for i, (ax, it) in enumerate(zip(sax, iters)):
            for run, color in zip(results["runs"], colors):
                for s, snaps in enumerate(run.get("extras", {}).get("snapshots", [])):
                    ax.plot(x_plot, np.asarray(snaps, float)[i], color=color, lw=1.4 if s == 0 else 0.6,
                            alpha=1.0 if s == 0 else 0.35, label=run_label(run) if s == 0 else None)
            ax.scatter(x_data, y_data, color="k", zorder=5, s=10)
            ax.set_title(f"iteration {it}")
            ax.set_xlabel("x")
            if it > 0:  # the initial predictors are far larger than the data: let that panel scale itself
                ax.set_ylim(y_data.min() - 2, y_data.max() + 2)
        _legend_and_title(snap, sax, results, title(results) + "\npredictors during training (first seed bold)",
                          note="every surviving seed drawn; diverged seeds are not shown")
        figs[f"{name}_snapshots"] = snap
    return figs


def _metric_panels(results: dict):
    """Losses, Jacobian rank, feature sparsity of every recorded layer and the effective rank if recorded."""
    recorded = recorded_curves(results)
    layers = sorted((m for m in recorded if m.startswith("feature_sparsity_layer")),
                    key=lambda m: int(m.removeprefix("feature_sparsity_layer")))
    specs = [
        {"metric": "train_loss", "log": True, "title": "train loss"},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "jacobian_rank", "title": "Jacobian rank"},
        *({"metric": m, "title": f"feature sparsity, layer {m.removeprefix('feature_sparsity_layer')} "
                                 "(lower is sparser)"} for m in layers),
        *([{"metric": "feature_sparsity", "title": "feature sparsity (lower is sparser)"}]
          if "feature_sparsity" in recorded else []),
        *([{"metric": "effective_rank", "title": "effective rank, last hidden layer"}]
          if "effective_rank" in recorded else []),
    ]
    specs = [s for s in specs if s["metric"] in recorded]
    return panels(results, specs, ncols=3 if len(specs) > 4 else None, suptitle=title(results))


def _neurons(results: dict):
    """First-layer weights in the plane, init -> end of training, one seed per run, teacher in black."""
    import matplotlib.pyplot as plt

    teacher = np.asarray(results["teacher_neurons"], float)
    runs = results["runs"]
    with figure_style():
        fig, axes = plt.subplots(1, len(runs), figsize=(3.3 * len(runs), 4.2), squeeze=False,
                                 layout="compressed")  # equal-aspect panels
        # the same seed in every panel where possible: same initialization, same sampling stream
        common = set.intersection(*(set(r["seeds"]) for r in runs)) if runs else set()
        for ax, run, color in zip(axes[0], runs, run_colors(len(runs))):
            extras = run.get("extras", {})
            if not extras.get("first_layer_init"):
                ax.set_title(f"{run['label']}\n(no surviving seed)", fontsize=9)
                continue
            seed = min(common) if common else run["seeds"][0]
            k = run["seeds"].index(seed)
            w0 = np.asarray(extras["first_layer_init"][k], float)
            w1 = np.asarray(extras["first_layer_final"][k], float)
            a = np.asarray(extras["output_weights_final"][k], float)
            for t in teacher:
                ax.plot([0, 1.6 * t[0]], [0, 1.6 * t[1]], color="k", lw=2, alpha=0.8)
            ax.scatter(w0[:, 0], w0[:, 1], s=10, color="0.6", label="init")
            ax.scatter(w1[:, 0], w1[:, 1], s=12 + 30 * np.abs(a) / max(np.abs(a).max(), 1e-12), color=color,
                       label="final (size ~ |output weight|)")
            # one collection of arrows per panel (an annotation each costs as much to draw as the rest)
            ax.quiver(w0[:, 0], w0[:, 1], w1[:, 0] - w0[:, 0], w1[:, 1] - w0[:, 1], angles="xy",
                      scale_units="xy", scale=1, color=color, alpha=0.6, width=0.004, headwidth=4,
                      headlength=5, headaxislength=4.5, minlength=0)
            lim = 1.1 * max(np.abs(np.concatenate([w0, w1])).max(), 1.6)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")
            ax.set_title(f"{run['label']}\nseed {seed}", fontsize=9)
        axes[0, 0].plot([], [], color="k", lw=2, label="teacher neurons")
        axes[0, 0].legend(loc="lower left", fontsize=7)
        fig.suptitle(titled(results, f"{title(results)}\nfirst-layer weights, init -> end of training "
                                     "(one seed; teacher directions in black)"), fontsize=11)
    return fig


def figures(results: dict) -> dict:
    """{file stem: figure}: the 1-D views when the results hold predictor snapshots, else the metric
    panels, plus the first-layer picture when they hold the teacher's neurons."""
    name = results["experiment"]
    if "snapshot_x" in results:
        return _figures_1d(results)
    figs = {name: _metric_panels(results)}
    if "teacher_neurons" in results:
        figs[f"{name}_neurons"] = _neurons(results)
    if "sharpness" in recorded_curves(results):
        figs[f"{name}_sharpness"] = sharpness_figure(results, title(results))
    return figs


# ---------------------------------------------------------------- the four experiments and their claims


# Surviving seeds asked for per run: enough that a collapse rate of 10% shows (about 2 of 20, its 95% interval
# 3-30%), where 5 seeds mostly hold none; the paper shows one seed per run.
SEEDS = 20


def _relu_1d_claims(overreg: bool) -> tuple:
    claims = [Claim(f"the {{long.at}} run ends with lower median {m} than the {{short.at}} run", True,
                    median_below(m, "long", "short")) for m in ("jacobian_rank", "feature_sparsity")]
    claims += [Claim(f"the {{{key}.at}} run fits the data (median train loss < {UNDERFIT_LOSS:g})", True,
                     median_at_most("train_loss", key, UNDERFIT_LOSS)) for key in ("short", "long")]
    if overreg:
        claims.append(Claim("the overreg {long.at} run ends sparser (median) than relu_1d's", False,
                            median_below_other("feature_sparsity", "long", "relu_1d", "long"), needs="relu_1d"))
    return tuple(claims)


def _teacher_student_claims(sparsity: list[str], rank_robust: bool) -> tuple:
    large = ["early", "middle", "late"]
    claims = []
    for m in sparsity:
        claims.append(Claim(f"every large-step run ends with lower median {m} than the small step", True,
                            medians_below(m, large, "small")))
        claims.append(Claim(f"the {{late.at}} run is sparser ({m}, median) than the {{early.at}} run", False,
                            median_below(m, "late", "early")))
    claims += [
        Claim("every large-step run ends with lower median test loss than the small step", False,
              medians_below("test_loss", large, "small")),
        Claim("the Jacobian rank (median) is lower at {late.at} than for the small step", rank_robust,
              median_below("jacobian_rank", "late", "small", ".0f")),
        Claim("median test loss falls monotonically with the decay point ({early.at} > {middle.at} > {late.at})",
              False, medians_fall("test_loss", large)),
    ]
    return tuple(claims)


def _warmup_1d(key: str, fraction: float, factor: float, gain_per_unit: float) -> ReluRun:
    gain = gain_per_unit * fraction
    return ReluRun(key, Schedule(2e-4, ((fraction, factor),), Warmup("linear", until=fraction, gain=gain),
                                 "before"))


def _config_1d(gain_per_unit: float) -> ReluConfig:
    return ReluConfig(
        task="1d", widths=(100,), biases=True, init="1d", d=1, n=12,
        iterations=int(10 ** 4.5) + 1,
        runs=(_warmup_1d("short", 0.02, 2.5, gain_per_unit), _warmup_1d("long", 0.5, 3.0, gain_per_unit)),
        corr_threshold=0.999, rank_points=300,
        snapshot_fractions=(0.0, 0.01, 0.02, 0.1, 0.5, 1.0),
    )


def _run_multi(key: str, fraction: float, factor: float) -> ReluRun:
    return ReluRun(key, Schedule(0.04, ((fraction, factor),), Warmup("power", until=fraction, gain=5, power=0.5),
                                 "before"))


RELU_1D = Experiment(name="relu_1d", title="Two-layer ReLU net, 1-D regression: short vs long large-step phase",
                     config=_config_1d(400.0), run=run, claims=_relu_1d_claims(overreg=False),
                     notebook="fc_nets_1d_regression.ipynb",
                     headline=("jacobian_rank", "feature_sparsity", "train_loss"), seeds=SEEDS)
RELU_1D_OVERREG = Experiment(name="relu_1d_overreg",
                             title="Two-layer ReLU net, 1-D regression, stronger warmup (over-regularization)",
                             config=_config_1d(500.0), run=run, claims=_relu_1d_claims(overreg=True),
                             notebook="fc_nets_1d_regression.ipynb",
                             headline=("jacobian_rank", "feature_sparsity", "train_loss"), seeds=SEEDS)

RELU_TWO_LAYER = Experiment(
    name="relu_two_layer",
    title="Two-layer ReLU teacher-student (d=2): large steps, decayed at different points",
    config=ReluConfig(
        task="teacher_student", widths=(20,), biases=False, init="gaussian", init_scale=0.5,
        output_init_scale=0.0, d=2, n=15, teacher_widths=(3,), teacher_biases=False, data_seed=0,
        iterations=int(10 ** 4.15) + 1,
        runs=(
            ReluRun("small", Schedule(0.13)),
            ReluRun("early", Schedule(0.455, ((0.1, 2.0),), decay_timing="before")),
            ReluRun("middle", Schedule(0.455, ((0.3, 4.0),), decay_timing="before")),
            ReluRun("late", Schedule(0.455, ((0.5, 5.0),), decay_timing="before")),
        ),
        neuron_movement=True,
        sharpness_points=40,
    ),
    run=run,
    claims=_teacher_student_claims(["feature_sparsity"], rank_robust=True) + (  # ranks far apart
        Claim("past the first 2% of training no surviving seed's sharpness exceeds 2/η of its step, in any run",
              True, sharpness_above(["small", "early", "middle", "late"], "later", none=True), uses=("sharpness",)),
        Claim("in the first 2% of training, the large step pushes the sharpness of some surviving seeds above 2/η "
              "for a few updates (a transient the small step does not show)", False,
              sharpness_above(["early", "middle", "late"], "early", none=False), paper=False, uses=("sharpness",)),
    ),
    notebook="fc_nets_two_layer.ipynb",
    headline=("test_loss", "feature_sparsity", "jacobian_rank"),
    seeds=SEEDS,
)

RELU_MULTI_LAYER = Experiment(
    name="relu_multi_layer",
    title="Three-layer ReLU teacher-student (d=5): warmup, large steps, one decay",
    config=ReluConfig(
        task="teacher_student", widths=(10, 10), biases=True, output_bias=True, init="gaussian", init_scale=0.8,
        d=5, n=50, teacher_widths=(2, 2), teacher_biases=True, data_seed=5,
        iterations=10 ** 4 + 1,
        runs=(
            ReluRun("small", Schedule(0.011)),
            _run_multi("early", 0.1, 3.5),
            _run_multi("middle", 0.3, 2.5),
            _run_multi("late", 0.5, 5.0),
        ),
    ),
    run=run,
    # the multi-layer ranks overlap: reported, not robust
    claims=_teacher_student_claims(["feature_sparsity_layer1", "feature_sparsity_layer2"], rank_robust=False) + (
        Claim("seeds collapse (a layer dies) only with the large step: none with the small step, some over the "
              "large-step runs", False, collapse_only_with(["early", "middle", "late"], ["small"]), paper=False),
    ),
    notebook="fc_nets_multi_layer.ipynb",
    headline=("test_loss", "feature_sparsity_layer1", "feature_sparsity_layer2"),
    seeds=SEEDS,
)
