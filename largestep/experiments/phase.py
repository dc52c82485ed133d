"""`phase_diag` and `phase_relu`: maps over (initial step size eta, end of the large-step phase f).

The paper shows four schedules of one seed per model.  Here every cell of a grid eta x f is a run of the
base experiment (`diag_sgd`'s diagonal nets or `relu_two_layer`'s teacher-student net, same data, model and
number of iterations): step eta until the fraction f of training, then the same small step `final_lr` in
every cell.  Every cell tries the same number of training seeds (20 by default), whatever diverges, so that
its divergence rate is an estimate with a known count and a 95% interval; the maps show medians over the
seeds that survived, the fraction that diverged, and per column the eta at which that fraction reaches 1/2
(`boundary`), with the range of eta where its interval still contains 1/2 (`boundary_band`).  All cells and
seeds train as batched programs of the base experiment (its `run`); metrics are recorded at initialization
and at the end only.  `python -m largestep reproduce phase_diag phase_relu` (tens of seconds here); narrated in
phase_diagrams.ipynb.  Sections: config, run, the maps in numbers, figures, claims, the two experiments.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..claims import Claim, paired_below, spread
from ..config import ConfigError, to_dict
from ..plotting import figure_style, legend_below, titled
from ..results import NotResults, fail, require_config
from ..schedules import TWO_STEP, Schedule, two_step_name
from ..stats import rate_text, wilson_interval
from ..stats import learner_median as median
from ..stats import learner_values as final_values
from . import Experiment, deep, diag, relu

# what each base's maps show, in order: (metric, title, log colour scale)
MAPS = {
    "diag_sgd": (("test_loss", "test loss", True), ("l0_norm", r"$\ell_0$ of $\beta$ (lower is sparser)", False),
                 ("jacobian_rank", "Jacobian rank", False)),
    "relu_two_layer": (("test_loss", "test loss", True), ("feature_sparsity", "feature sparsity (lower is sparser)",
                                                         False), ("jacobian_rank", "Jacobian rank", False)),
    "deep_mnist1d": (("test_err", "test error", False),
                     *((f"feature_sparsity_block{b}", f"feature sparsity, block {b} (lower: sparser)", False)
                       for b in range(1, 6))),
}
# the surviving seeds a cell's median needs (fewer: drawn grey); the toy maps' medians need one
MIN_SURVIVORS = {"deep_mnist1d": 4}
# the deep map's cells: the deep study's network and data, trained for a quarter of its epochs and evaluated on a
# coarser grid (10 points), so that the map's 210 runs take minutes here.  A step of this MLP costs about 3 ms of
# one core's arithmetic whether its run trains alone or in a group (measured: docs/deep_nets.md), so the number of
# steps, not the process per run, sets the map's time; runs share processes (deep_nets.group) to save the rest
DEEP_SETTINGS = {"epochs": 25, "eval_iter_freq": 155, "sparsity_examples": 2000, "runs_per_process": 128,
                 "runs_dir": "runs/deep_phase"}
DEEP_QUICK = {"epochs": 1, "eval_iter_freq": 31, "sparsity_examples": 500, "runs_per_process": 64,
              "runs_dir": "runs/quick/deep_phase"}


@dataclass(frozen=True)
class PhaseConfig:
    experiment: str  # the base experiment: its data, model and number of iterations
    lrs: tuple[float, ...]  # initial step sizes, increasing (the map's rows)
    fractions: tuple[float, ...]  # ends of the large-step phase, increasing, in (0, 1) (the map's columns)
    final_lr: float  # the step after the large-step phase, the same in every cell
    quick_mode: bool = False  # the base experiment's quick() config (fewer iterations)
    collected_from: str = ""  # a map collected from a sweep's train.py runs (experiment COLLECTED): their folder

    def validate(self) -> None:
        if self.experiment not in BASES:
            raise ConfigError(f"experiment must be one of {', '.join(BASES)}, got {self.experiment!r}")
        for name in ("lrs", "fractions"):
            values = getattr(self, name)
            if not values or any(b <= a for a, b in zip(values, values[1:])):
                raise ConfigError(f"{name} must be a non-empty increasing list, got {list(values)}")
        if not all(0 < f < 1 for f in self.fractions):
            raise ConfigError(f"fractions must lie in (0, 1), got {list(self.fractions)}")
        if not all(math.isfinite(v) and v > 0 for v in (*self.lrs, self.final_lr)):
            raise ConfigError(f"lrs and final_lr must be finite numbers > 0, got {list(self.lrs)}, {self.final_lr}")
        cells = len(self.lrs) * len(self.fractions)
        if cells > MAX_CELLS:  # counted before any cell's config is built
            raise ConfigError(f"the grid has {len(self.lrs)} x {len(self.fractions)} = {cells:,} cells, more than "
                              f"{MAX_CELLS:,}: a map that large takes days here; coarsen lrs or fractions")
        self._base(self.cells()[:1]).validate()

    def labels(self) -> list[str]:
        return [_label(lr, f) for lr, f in self.cells()]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """The base experiment's first round with one run per cell, from the cost of one run and of two."""
        one, two = (self._base(self.cells()[:1] * k).memory(n_seeds)[0] for k in (1, 2))
        cells = len(self.lrs) * len(self.fractions)
        return one + (cells - 1) * (two - one), "lrs, fractions, the base's iterations"

    def quick(self) -> "PhaseConfig":
        """Fewer iterations (the base's quick config) on the grid's corners and middle, for CI."""
        def corners(values):
            return tuple(sorted({values[0], values[len(values) // 2], values[-1]}))
        return dataclasses.replace(self, quick_mode=True, lrs=corners(self.lrs), fractions=corners(self.fractions))

    def cells(self) -> list[tuple[float, float]]:
        """(eta, f) of every cell, eta-major: cell i is row i // len(fractions), column i % len(fractions)."""
        return [(lr, f) for lr in self.lrs for f in self.fractions]

    def base_config(self):
        """The base experiment's config with one run per cell."""
        return self._base(self.cells())

    def _base(self, cells):
        base = BASES[self.experiment].config
        if self.experiment == "deep_mnist1d":  # a schedule by name (train.py's flag): eta until f, then final_lr
            runs = tuple(deep.DeepRunSpec(_key(lr, f), two_step_name(f, self.final_lr), lr, label=_label(lr, f))
                         for lr, f in cells)
            return dataclasses.replace(base, runs=runs, seed_policy="tries",
                                       **(DEEP_QUICK if self.quick_mode else DEEP_SETTINGS))
        base = base.quick() if self.quick_mode else base
        timing = "after" if self.experiment == "diag_sgd" else "before"  # as the base experiment divides
        schedules = [Schedule(lr, ((f, lr / self.final_lr),), decay_timing=timing) for lr, f in cells]
        if self.experiment == "diag_sgd":
            runs = tuple(diag.DiagRun(_key(lr, f), "sgd", s, _label(lr, f)) for (lr, f), s in zip(cells, schedules))
            extra = {}
        else:
            runs = tuple(relu.ReluRun(_key(lr, f), s, _label(lr, f)) for (lr, f), s in zip(cells, schedules))
            extra = {"neuron_movement": False}
        return dataclasses.replace(base, runs=runs, grid_early=0, grid_spaced=2, sharpness_points=0,
                                   seed_policy="tries", **extra)


COLLECTED = "train.py"  # the base of a map collected from a sweep's run directories (deep_nets.sweep --collect)
BASES = {"diag_sgd": diag.DIAG_SGD, "relu_two_layer": relu.RELU_TWO_LAYER, "deep_mnist1d": deep.DEEP_MNIST1D}
MAX_CELLS = 10_000


def _label(lr: float, fraction: float) -> str:
    return f"η={lr:g}, f={fraction:g}"


def _key(lr: float, fraction: float) -> str:
    return f"eta{lr:g}_f{fraction:g}".replace(".", "p").replace("-", "m").replace("+", "")


def run(config: PhaseConfig, n_seeds: int = 5, progress=None) -> dict:
    """Every cell of the grid, batched: the base experiment's run on the base config with one run per cell."""
    base_config = config.base_config()
    results = BASES[config.experiment].run(base_config, n_seeds=n_seeds, progress=progress)
    for record, (lr, fraction) in zip(results["runs"], config.cells()):
        record["lr"], record["fraction"] = lr, fraction
    results.pop("data", None)  # the base figures' scatter of the training set: not drawn here
    results["base_config"] = to_dict(base_config)
    results["phase"] = {"base": config.experiment, "lrs": list(config.lrs), "fractions": list(config.fractions),
                        "final_lr": config.final_lr, "maps": [list(m) for m in MAPS[config.experiment]],
                        # a quick map asking for fewer seeds needs them all
                        "min_survivors": min(MIN_SURVIVORS.get(config.experiment, 1), n_seeds)}
    return results


def check(results: dict) -> None:
    """The map's own fields, for `experiments.load`: its configs, the grid, and every cell on it."""
    config = require_config(results, PhaseConfig)
    if config.experiment not in (*BASES, COLLECTED):
        raise fail("config.experiment", f"one of {', '.join((*BASES, COLLECTED))}", config.experiment)
    if config.experiment != COLLECTED:  # a collected map's runs carry their own flags
        require_config(results, type(BASES[config.experiment].config), "base_config")
    phase = results.get("phase")
    if not isinstance(phase, dict):
        raise NotResults("field 'phase' is missing or not an object")
    for name in ("lrs", "fractions"):
        values = phase.get(name)
        if not isinstance(values, list) or not values or not all(isinstance(v, (int, float)) for v in values):
            raise NotResults(f"field 'phase.{name}' must be a non-empty list of numbers")
    maps = phase.get("maps")
    if not isinstance(maps, list) or not all(
            isinstance(m, list) and len(m) == 3 and isinstance(m[0], str) and isinstance(m[1], str)
            and isinstance(m[2], bool) for m in maps):
        raise NotResults("field 'phase.maps' must be a list of [metric, title, log scale] entries")
    if not isinstance(phase.get("final_lr"), (int, float)):
        raise NotResults("field 'phase.final_lr' must be a number")
    for k, run in enumerate(results["runs"]):
        require_config(run, Schedule, "schedule", f"runs.{k}")
        if run.get("lr") not in phase["lrs"] or run.get("fraction") not in phase["fractions"]:
            raise NotResults(f"field 'runs.{k}': its lr and fraction must be values of phase.lrs and "
                             "phase.fractions")


def from_collected(results: dict) -> dict | None:
    """A sweep's collected train.py runs (deep_nets.runs.collect_runs) as a phase map, when every run's schedule is
    the two-step family with one step after the decay (a grid of lr_init x untilF_thenS); None otherwise."""
    cells = []
    for run in results["runs"]:
        match = TWO_STEP.fullmatch(str(run.get("flags", {}).get("lr_schedule", "")))
        if match is None:
            return None
        cells.append((float(run["flags"]["lr_init"]), float(match.group(1)), float(match.group(2))))
    if not cells or len({c[2] for c in cells}) != 1 or len(set(c[:2] for c in cells)) != len(cells):
        return None  # not one map: several final steps, or two runs (other flags) in one cell
    lrs, fractions = sorted({c[0] for c in cells}), sorted({c[1] for c in cells})
    config = PhaseConfig(COLLECTED, tuple(lrs), tuple(fractions), cells[0][2],
                         collected_from=results["config"].get("collected_from", ""))
    runs = [{**run, "lr": lr, "fraction": f} for run, (lr, f, _) in zip(results["runs"], cells)]
    return {**results, "family": "phase", "config": to_dict(config), "runs": runs,
            "phase": {"base": COLLECTED, "lrs": lrs, "fractions": fractions, "final_lr": cells[0][2],
                      "maps": [list(m) for m in MAPS["deep_mnist1d"]], "min_survivors": 1}}


# ---- the maps, from a results dict alone


def cell_grid(results: dict, value) -> np.ndarray:
    """value(run) for every cell, as a (len(lrs), len(fractions)) array (rows: eta, columns: f)."""
    phase = results["phase"]
    grid = np.full((len(phase["lrs"]), len(phase["fractions"])), np.nan)
    for run in results["runs"]:
        grid[phase["lrs"].index(run["lr"]), phase["fractions"].index(run["fraction"])] = value(run)
    return grid


def divergence_fraction(results: dict) -> np.ndarray:
    """Seeds diverged / seeds tried in each cell (NaN where none was tried)."""
    return cell_grid(results, lambda r: r["seeds_diverged"] / r["seeds_tried"] if r["seeds_tried"] else np.nan)


def median_map(results: dict, metric: str) -> np.ndarray:
    """Median final `metric` over each cell's surviving seeds (NaN where fewer than phase.min_survivors, by
    default one, survived)."""
    need = results["phase"].get("min_survivors", 1)
    return cell_grid(results, lambda run: median(run, metric) if final_values(run, metric).size >= need else np.nan)


def boundary(lrs, fraction_diverged) -> float:
    """The step size at which the divergence fraction of one column first reaches 1/2, going up in eta.

    Linear interpolation between the last grid eta below 1/2 and the first at or above it; lrs[0] when the
    smallest eta already diverges at least half the time; NaN when no eta of the column does (the edge
    lies beyond the grid).  Cells with no seed tried (NaN) are skipped.
    """
    lrs = np.asarray(lrs, dtype=float)
    p = np.asarray(fraction_diverged, dtype=float)
    known = np.isfinite(p)
    lrs, p = lrs[known], p[known]
    above = np.flatnonzero(p >= 0.5)
    if not above.size:
        return math.nan
    j = above[0]
    if j == 0:
        return float(lrs[0])
    return float(lrs[j - 1] + (0.5 - p[j - 1]) / (p[j] - p[j - 1]) * (lrs[j] - lrs[j - 1]))


def boundaries(results: dict) -> np.ndarray:
    """The 50%-divergence step size of each column f (see `boundary`)."""
    fraction = divergence_fraction(results)
    return np.array([boundary(results["phase"]["lrs"], fraction[:, j]) for j in range(fraction.shape[1])])


def interval_maps(results: dict) -> tuple[np.ndarray, np.ndarray]:
    """The 95% (Wilson) interval of each cell's divergence rate: (lower, upper) maps."""
    low = cell_grid(results, lambda r: wilson_interval(r["seeds_diverged"], r["seeds_tried"])[0])
    high = cell_grid(results, lambda r: wilson_interval(r["seeds_diverged"], r["seeds_tried"])[1])
    return low, high


def boundary_band(results: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the step sizes between which the 50% boundary lies at 95%: where the interval's upper bound
    first reaches 1/2 (below it, fewer than half diverge, at 95%) and where its lower bound does (above it,
    more than half)."""
    low, high = interval_maps(results)
    lrs = results["phase"]["lrs"]
    return (np.array([boundary(lrs, high[:, j]) for j in range(high.shape[1])]),
            np.array([boundary(lrs, low[:, j]) for j in range(low.shape[1])]))


def boundary_text(results: dict) -> str:
    """'0.285 [0.28, 0.29] / ...': each column's 50%-divergence eta with its 95% band."""
    edge, (first, last) = boundaries(results), boundary_band(results)
    def shown(value):
        return f"{value:.3g}" if np.isfinite(value) else "beyond the grid"
    return " / ".join(f"{shown(e)} [{shown(a)}, {shown(b)}]" for e, a, b in zip(edge, first, last))


def runs_description(results: dict) -> str:
    """'η 0.05..0.32 (12) × f 0.05..0.9 (8), then η=0.05': the grid in one line."""
    phase = results["phase"]
    lrs, fractions = phase["lrs"], phase["fractions"]
    return (f"η {lrs[0]:g}..{lrs[-1]:g} ({len(lrs)}) × f {fractions[0]:g}..{fractions[-1]:g} ({len(fractions)}), "
            f"then η={phase['final_lr']:g}")


def summary(results: dict) -> str:
    """The map in one line: cells, seeds tried and diverged, where each metric is lowest, the boundary."""
    tried = sum(run["seeds_tried"] for run in results["runs"])
    diverged = sum(run["seeds_diverged"] for run in results["runs"])
    return f"{len(results['runs'])} cells, {tried} seeds tried, {diverged} diverged; {headline(results)}"


def headline(results: dict) -> str:
    """The map in numbers: where each metric is lowest, and the 50%-divergence step size across f."""
    phase = results["phase"]
    parts = []
    for metric, title, _ in phase["maps"]:
        values = median_map(results, metric)
        if np.isfinite(values).any():
            i, j = np.unravel_index(np.nanargmin(values), values.shape)
            cell = _cell(results, phase["lrs"][i], phase["fractions"][j])
            parts.append(f"lowest median {metric.replace('_', ' ')} {values[i, j]:.3g} at η={phase['lrs'][i]:g}, "
                         f"f={phase['fractions'][j]:g} ({rate_text(cell['seeds_diverged'], cell['seeds_tried'], 'diverged')})")
    parts.append(f"50%-divergence η [95% band] from f={phase['fractions'][0]:g} to {phase['fractions'][-1]:g}: "
                 + boundary_text(results))
    return "; ".join(parts)


# ---------------------------------------------------------------- figures

NAMES = {"diag_sgd": "Diagonal nets (diag_sgd data)", "relu_two_layer": "Two-layer ReLU teacher-student (relu_two_layer data)",
         "deep_mnist1d": "5-layer ReLU MLP on MNIST-1D (deep_mnist1d, train.py runs)", COLLECTED: "train.py runs"}


def _number(value: float, log: bool) -> str:
    if not np.isfinite(value):
        return ""
    if log:
        return f"{value:.0e}".replace("e-0", "e-")
    return f"{value:.0f}" if abs(value) >= 10 or float(value).is_integer() else f"{value:.2f}"


def _staircase(fraction: np.ndarray) -> tuple[list, list]:
    """The 50% boundary along the cells' edges: in each column, the edge between the last row where fewer than
    half the seeds diverged and the first where at least half did (x, y in cell coordinates)."""
    xs, ys = [], []
    for j in range(fraction.shape[1]):
        above = np.flatnonzero(fraction[:, j] >= 0.5)
        row = above[0] if above.size else np.nan
        xs += [j, j + 1]
        ys += [row, row]
    return xs, ys


def _panel(fig, ax, values, lrs, fractions, fraction, uncertain, title, log=False, vmin=None, vmax=None,
           cmap="viridis", labels=None):
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

    finite = values[np.isfinite(values)]
    if log and finite.size and (finite > 0).all():
        norm = LogNorm(vmin=finite.min(), vmax=finite.max())
    else:
        norm = Normalize(vmin=finite.min() if vmin is None and finite.size else vmin,
                         vmax=finite.max() if vmax is None and finite.size else vmax)
    ax.set_facecolor("0.8")  # cells without a surviving seed
    mesh = ax.pcolormesh(np.ma.masked_invalid(values), cmap=cmap, norm=norm)
    fig.colorbar(mesh, ax=ax, shrink=0.9)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = labels[i][j] if labels is not None else _number(values[i, j], log)
            if text and np.isfinite(values[i, j]):
                shade = mesh.cmap(norm(values[i, j]))
                dark = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2] < 0.5
                ax.text(j + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
            if uncertain[i, j]:  # its 95% interval holds 1/2: the boundary may pass here
                ax.add_patch(Rectangle((j + 0.06, i + 0.06), 0.88, 0.88, fill=False, ec="red", lw=0.9, ls=":"))
    ax.plot(*_staircase(fraction), color="red", lw=2.2, solid_capstyle="butt", label="50% of the seeds tried diverge")
    ax.plot([], [], color="red", lw=0.9, ls=":", label="cells whose 95% interval of the rate holds 50%")
    ax.set_xticks(np.arange(len(fractions)) + 0.5, [f"{f:g}" for f in fractions])
    ax.set_yticks(np.arange(len(lrs)) + 0.5, [f"{lr:g}" for lr in lrs])
    ax.set_xlabel("end of the large-step phase f (one column per grid value)")
    ax.set_ylabel("initial step size η (one row per grid value; rows not to scale)")
    ax.set_title(title)
    ax.grid(False)


def figures(results: dict) -> dict:
    """{experiment: figure}: one heat map per metric of the base and one of the divergence rate (k of m per cell),
    each with the 50% boundary drawn along the cells' edges and the cells where it is uncertain outlined."""
    import matplotlib.pyplot as plt

    phase = results["phase"]
    lrs, fractions = phase["lrs"], phase["fractions"]
    fraction = divergence_fraction(results)
    low, high = interval_maps(results)
    uncertain = (low <= 0.5) & (high >= 0.5)
    counts = cell_grid(results, lambda r: r["seeds_diverged"])
    tried = cell_grid(results, lambda r: r["seeds_tried"])
    labels = [[f"{counts[i, j]:.0f}/{tried[i, j]:.0f}" if np.isfinite(tried[i, j]) else "" for j in range(len(fractions))]
              for i in range(len(lrs))]
    maps = phase["maps"]
    columns = 2 if len(maps) < 4 else 4  # the toy maps: 2 x 2; the deep map (test error, 5 blocks): 2 x 4
    rows = -(-(len(maps) + 1) // columns)
    with figure_style():
        fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 6 * rows), layout="constrained")
        for ax in axes.flat[len(maps) + 1:]:
            ax.set_visible(False)
        for ax, (metric, title, log) in zip(axes.flat, maps):
            _panel(fig, ax, median_map(results, metric), lrs, fractions, fraction, uncertain,
                   f"{title}, median over survivors", log=log)
        _panel(fig, axes.flat[len(maps)], fraction, lrs, fractions, fraction, uncertain,
               "seeds diverged, of the seeds tried", vmin=0, vmax=1, cmap="magma", labels=labels)
        legend_below(fig, *axes.flat[0].get_legend_handles_labels(), most=2)
        tries = int(np.nanmax(tried)) if np.isfinite(tried).any() else 0
        need = phase.get("min_survivors", 1)
        fig.suptitle(titled(results, f"{NAMES.get(phase['base'], phase['base'])}: step η until the fraction f of "
                                     f"training, then η={phase['final_lr']:g}\n{tries} training seeds tried per "
                                     "cell; medians over the seeds that survived (conditioned on survival); grey: "
                                     + ("no seed survived" if need <= 1 else f"fewer than {need} seeds survived")),
                     fontsize=11)
    return {results["experiment"]: fig}


# ---------------------------------------------------------------- claims

def _cell(results: dict, lr: float, fraction: float) -> dict | None:
    return next((r for r in results["runs"] if r["lr"] == lr and r["fraction"] == fraction), None)


def _cells(check):
    """check(results, run_a, run_b) for the cells a, b named by (eta, f); fails, saying so, when the grid lacks one."""
    def wrapped(a, b):
        def on(results, others):
            ra, rb = _cell(results, *a), _cell(results, *b)
            if ra is None or rb is None:
                return False, f"the grid has no cell η={(a if ra is None else b)[0]:g}, f={(a if ra is None else b)[1]:g}"
            return check(ra, rb)
        return on
    return wrapped


def every_seed_at_least(metric: str, lr_max: float, low: str):
    """Every surviving seed of every cell with eta <= lr_max ends with metric >= the config's field `low`."""
    def check(results, others):
        if low not in results.get("base_config", {}):
            return False, f"the results record no base config {low!r} (made by an older version: rerun)"
        bound = results["base_config"][low]
        cells = [r for r in results["runs"] if r["lr"] <= lr_max]
        values = np.concatenate([final_values(r, metric) for r in cells])
        below = [r["label"] for r in cells if (final_values(r, metric) < bound).any()]
        return (bool(values.size) and not below,
                f"{len(cells)} cells, {values.size} surviving seeds, lowest {values.min():.4g} (d = {bound}); "
                f"cells with a seed below: {below or 'none'}")
    return check


def cell_seeds_below(metric: str, a: tuple, b: tuple, fmt: str = ".3g"):
    """Every surviving seed of cell a ends below every surviving seed of cell b."""
    @_cells
    def check(ra, rb):
        va, vb = final_values(ra, metric), final_values(rb, metric)
        holds = bool(va.size and vb.size and va.max() < vb.min())
        return holds, f"{spread(ra, metric, fmt)} vs {spread(rb, metric, fmt)}"
    return check(a, b)


def cell_median_below(metric: str, a: tuple, b: tuple, fmt: str = ".3g"):
    """Cell a's median is below cell b's (paired counts over the seeds that survived in both)."""
    @_cells
    def check(ra, rb):
        k, n = paired_below(ra, rb, metric)
        return (bool(median(ra, metric) < median(rb, metric)),
                f"{spread(ra, metric, fmt)} vs {spread(rb, metric, fmt)}; paired seeds lower: {k} of {n}")
    return check(a, b)


def lowest_cell_past_boundary(metric: str):
    """The cell with the lowest median lies at or above its column's 50%-divergence step size."""
    def check(results, others):
        values = median_map(results, metric)
        if not np.isfinite(values).any():
            return False, "no cell has a median (too few survivors)"
        i, j = np.unravel_index(np.nanargmin(values), values.shape)
        lr, f = results["phase"]["lrs"][i], results["phase"]["fractions"][j]
        edge, (first, last) = boundaries(results)[j], boundary_band(results)
        cell = _cell(results, lr, f)
        return (bool(np.isfinite(edge) and lr >= edge),
                f"lowest median {values[i, j]:.3g} at η={lr:g}, f={f:g}, where "
                f"{rate_text(cell['seeds_diverged'], cell['seeds_tried'], 'diverged')}; that column's 50% boundary: "
                f"η={edge:.3g} (95% band {first[j]:.3g} to {last[j]:.3g})")
    return check


def boundary_spread(at_least: float | None = None, at_most: float | None = None):
    """The boundary's step size at the smallest f minus at the largest f: >= at_least and/or <= at_most (point
    estimates; the numbers give each column's 95% band)."""
    def check(results, others):
        edge = boundaries(results)
        drop = edge[0] - edge[-1]
        holds = bool(np.isfinite(drop) and (at_least is None or drop >= at_least) and (at_most is None or abs(drop) <= at_most))
        return holds, "50%-divergence η [95% band] per f: " + boundary_text(results)
    return check


def cell_loses_some_seeds(lr: float, fraction: float):
    """Some but not all seeds of the cell diverge: the 95% interval of its rate excludes 0 and 1."""
    def check(results, others):
        cell = _cell(results, lr, fraction)
        if cell is None:
            return False, f"the grid has no cell η={lr:g}, f={fraction:g}"
        low, high = wilson_interval(cell["seeds_diverged"], cell["seeds_tried"])
        return (bool(low > 0 and high < 1),
                f"η={lr:g}, f={fraction:g}: {rate_text(cell['seeds_diverged'], cell['seeds_tried'], 'diverged')}")
    return check


def _below_boundary_rows(results: dict) -> list[int]:
    """The rows (eta) where every cell has fewer than half its seeds diverged and a median (enough survivors)."""
    fraction = divergence_fraction(results)
    known = np.isfinite(median_map(results, results["phase"]["maps"][0][0]))
    return [i for i in range(fraction.shape[0]) if (fraction[i] < 0.5).all() and known[i].all()]


def falls_with_f_below_boundary(metric: str):
    """At the largest eta whose every cell lies below the 50% boundary, the median at the largest f is below the
    median at the smallest f (paired counts over seeds that survived in both)."""
    def check(results, others):
        rows = _below_boundary_rows(results)
        phase = results["phase"]
        if not rows or phase["lrs"][rows[-1]] == phase["lrs"][0]:
            return False, "no row with a step above the smallest lies wholly below the boundary"
        lr = phase["lrs"][rows[-1]]
        first, last = _cell(results, lr, phase["fractions"][0]), _cell(results, lr, phase["fractions"][-1])
        k, n = paired_below(last, first, metric)
        medians = median_map(results, metric)[rows[-1]]
        return (bool(medians[-1] < medians[0]),
                f"η={lr:g}: median by f {' / '.join(f'{v:.3g}' for v in medians)}; {spread(last, metric)} vs "
                f"{spread(first, metric)}; paired seeds lower: {k} of {n}")
    return check


def follows(metric: str, other: str):
    """Across the cells with a median, `metric`'s medians rise with `other`'s: Spearman's rank correlation > 0."""
    def check(results, others):
        a, b = median_map(results, metric).ravel(), median_map(results, other).ravel()
        known = np.isfinite(a) & np.isfinite(b)
        if known.sum() < 3:
            return False, f"{int(known.sum())} cells with both medians"
        ra, rb = (np.argsort(np.argsort(v[known])) for v in (a, b))
        rho = float(np.corrcoef(ra, rb)[0, 1])
        return bool(rho > 0), f"Spearman ρ = {rho:.2f} over {int(known.sum())} cells"
    return check


def lowest_cell_below(metric: str, lr: float):
    """The cell with the lowest median is sparser (lower) than every cell of the row eta = lr (the small step)."""
    def check(results, others):
        values = median_map(results, metric)
        phase = results["phase"]
        if lr not in phase["lrs"]:
            return False, f"the grid has no row η={lr:g}"
        if not np.isfinite(values).any():
            return False, "no cell has a median (too few survivors)"
        i, j = np.unravel_index(np.nanargmin(values), values.shape)
        row = values[phase["lrs"].index(lr)]
        return (bool(np.isfinite(row).all() and values[i, j] < row.min()),
                f"lowest median {values[i, j]:.3g} at η={phase['lrs'][i]:g}, f={phase['fractions'][j]:g}; "
                f"η={lr:g} row: {' / '.join(f'{v:.3g}' for v in row)}")
    return check


CLAIMS_DIAG = [
    Claim("no sparsity away from the edge: every surviving seed of every cell with η <= 0.26 keeps all d "
          "coordinates (ℓ0 = d)", True, every_seed_at_least("l0_norm", 0.26, "d")),
    Claim("along η = 0.28 a longer large-step phase is sparser: every surviving seed at f = 0.9 ends with a lower "
          "ℓ0 than every surviving seed at f = 0.05", True, cell_seeds_below("l0_norm", (0.28, 0.9), (0.28, 0.05))),
    Claim("the longer the large-step phase, the smaller the step that diverges: the 50%-divergence η at f = 0.05 "
          "exceeds that at f = 0.9 by at least 0.01", True, boundary_spread(at_least=0.01)),
    Claim("the sparsest cell (median ℓ0) lies at or past its column's 50%-divergence boundary", True,
          lowest_cell_past_boundary("l0_norm")),
    Claim("below the boundary a cell is not safe: at η = 0.29, f = 0.05, some but not all seeds diverge (the rate's "
          "95% interval excludes 0 and 1)", True, cell_loses_some_seeds(0.29, 0.05)),
    Claim("along η = 0.27 the test loss falls with the length of the large-step phase (median, f = 0.9 vs 0.05)",
          False, cell_median_below("test_loss", (0.27, 0.9), (0.27, 0.05))),
    Claim("along η = 0.28, where the sparsity gain is, the test loss also falls with f (median, f = 0.9 vs 0.05)",
          False, cell_median_below("test_loss", (0.28, 0.9), (0.28, 0.05))),
]

CLAIMS_RELU = [
    Claim("divergence is decided early: the 50%-divergence η is the same (within 0.01) for every f", True,
          boundary_spread(at_most=0.01)),
    # past the boundary, at the largest step where several of the 20 seeds tried survive (at 0.46, one or none);
    # in medians: with 20 seeds tried, one survivor of the large step ends within the small step's range
    Claim("larger steps give sparser features: the median at η = 0.42 is below the median at η = 0.1 (f = 0.5)",
          True, cell_median_below("feature_sparsity", (0.42, 0.5), (0.1, 0.5))),
    Claim("the sparsest cell (median feature sparsity) lies at or past the 50%-divergence boundary", True,
          lowest_cell_past_boundary("feature_sparsity")),
    Claim("below the boundary (η = 0.38) a longer large-step phase gives sparser features (median, f = 0.9 vs "
          "0.02)", False, cell_median_below("feature_sparsity", (0.38, 0.9), (0.38, 0.02))),
    Claim("below the boundary (η = 0.38) a longer large-step phase gives a lower test loss (median, f = 0.9 vs "
          "0.02)", False, cell_median_below("test_loss", (0.38, 0.9), (0.38, 0.02))),
    Claim("past the boundary (η = 0.42) a longer large-step phase gives sparser features (median, f = 0.9 vs 0.02)",
          False, cell_median_below("feature_sparsity", (0.42, 0.9), (0.42, 0.02))),
]


# ---------------------------------------------------------------- the two maps

def _config(experiment, lrs, fractions, final_lr):
    return PhaseConfig(experiment=experiment, lrs=tuple(lrs), fractions=tuple(fractions), final_lr=final_lr)


FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)

PHASE_DIAG = Experiment(
    name="phase_diag",
    title="Diagonal nets (diag_sgd data): map over the initial step size and the end of the large-step phase",
    # finer near the edge (0.26-0.30); the bottom row keeps the final step throughout
    config=_config("diag_sgd", (0.1, 0.15, 0.2, 0.24, 0.26, 0.27, 0.275, 0.28, 0.285, 0.29, 0.3, 0.32),
                   FRACTIONS, 0.1),
    run=run,
    claims=tuple(CLAIMS_DIAG),
    notebook="phase_diagrams.ipynb",
    seeds=20,  # tried per cell, whatever diverges: a rate with an interval of about +-0.2 or narrower
)

PHASE_RELU = Experiment(
    name="phase_relu",
    title="Two-layer ReLU teacher-student (relu_two_layer data): map over the step size and the decay point",
    # finer near the edge (0.38-0.46), and f from 0.02: these nets diverge within the first 5% of training
    config=_config("relu_two_layer", (0.1, 0.2, 0.3, 0.34, 0.36, 0.38, 0.39, 0.4, 0.41, 0.42, 0.44, 0.46, 0.5, 0.6),
                   (0.02, *FRACTIONS), 0.1),
    run=run,
    claims=tuple(CLAIMS_RELU),
    notebook="phase_diagrams.ipynb",
    seeds=20,
)

# the deep map: the small constant step (η=0.05, the first row: decayed to itself) up to steps that diverge at once.
# In the committed map (images/deep_phase.json) the same seeds diverge in every column of a row (2 of 6 at 0.65,
# 4 of 6 at 0.8, all from 1.0): divergence is decided within the first 5% of training, so cells past the boundary
# have fewer than the 4 survivors a median needs
CLAIMS_DEEP = [
    Claim("larger steps give sparser block-4 features: at f = 0.9 every surviving seed at η = 0.65 ends sparser than "
          "every seed of the small constant step η = 0.05", True,
          cell_seeds_below("feature_sparsity_block4", (0.65, 0.9), (0.05, 0.9))),
    Claim("along η = 0.65 a longer large-step phase is sparser: every surviving seed at f = 0.9 ends with sparser "
          "block-4 features than every surviving seed at f = 0.05", False,
          cell_seeds_below("feature_sparsity_block4", (0.65, 0.9), (0.65, 0.05))),
    Claim("a large-step phase gives sparser block-4 features: the sparsest cell (median) is below every cell of the "
          "small constant step's row η = 0.05", False, lowest_cell_below("feature_sparsity_block4", 0.05)),
    Claim("below the boundary (the largest η where every cell has < 50% diverged), block-4 sparsity falls with the "
          "length of the large-step phase (median, largest f vs smallest)", False,
          falls_with_f_below_boundary("feature_sparsity_block4")),
    Claim("along η = 0.65 the test error falls with the length of the large-step phase (median, f = 0.9 vs 0.05)",
          False, cell_median_below("test_err", (0.65, 0.9), (0.65, 0.05))),
    Claim("divergence is decided early: the 50%-divergence η is the same (within 0.01) for every f", False,
          boundary_spread(at_most=0.01), paper=False),
    Claim("the sparsest cell (median block-4 sparsity) lies at or past its column's 50%-divergence boundary", False,
          lowest_cell_past_boundary("feature_sparsity_block4"), paper=False),
    Claim("test error follows sparsity: across cells, median test error rises with median block-4 sparsity "
          "(Spearman ρ > 0)", False, follows("test_err", "feature_sparsity_block4"), paper=False),
]

DEEP_PHASE = Experiment(
    name="deep_phase",
    title="deep_nets/train.py's MLP on MNIST-1D: map over the initial step size and the end of the large-step phase",
    config=_config("deep_mnist1d", (0.05, 0.3, 0.5, 0.65, 0.8, 1.0, 1.3), (0.05, 0.1, 0.3, 0.5, 0.9), 0.05),
    run=run,
    claims=tuple(CLAIMS_DEEP),
    notebook="phase_diagrams.ipynb",
    headline=("test_err", "feature_sparsity_block4"),
    seeds=6,  # tried per cell, whatever diverges; a cell's medians need 4 survivors (MIN_SURVIVORS)
    on_request=True,
)
