"""`phase_diag` and `phase_relu`: maps over (initial step size eta, end of the large-step phase f).

The paper shows four schedules of one seed per model.  Here every cell of a grid eta x f is a run of the
base experiment (`diag_sgd`'s diagonal nets or `relu_two_layer`'s teacher-student net, same data, model and
number of iterations): step eta until the fraction f of training, then the same small step `final_lr` in
every cell.  All cells and seeds train as one batched program of the base experiment (its `run`), with the
survivor policy per cell (seeds drawn until `n_seeds` survive, at most 10x tried), and metrics recorded at
initialization and at the end only.  The maps (`phase_figures`) show medians over surviving seeds, the
fraction of seeds tried that diverged, and the eta at which that fraction reaches 1/2 in each column
(`boundary`), computed from the stored counts.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..config import ConfigError
from ..schedules import Schedule
from . import Experiment, get

BASES = ("diag_sgd", "relu_two_layer")
# what each base's maps show, in order: (metric, title, log colour scale)
MAPS = {
    "diag_sgd": (("test_loss", "test loss", True), ("l0_norm", r"$\ell_0$ of $\beta$ (lower is sparser)", False),
                 ("jacobian_rank", "Jacobian rank", False)),
    "relu_two_layer": (("test_loss", "test loss", True), ("feature_sparsity", "feature sparsity (lower is sparser)",
                                                         False), ("jacobian_rank", "Jacobian rank", False)),
}


@dataclass(frozen=True)
class PhaseConfig:
    experiment: str  # the base experiment: its data, model and number of iterations
    lrs: tuple[float, ...]  # initial step sizes, increasing (the map's rows)
    fractions: tuple[float, ...]  # ends of the large-step phase, increasing, in (0, 1) (the map's columns)
    final_lr: float  # the step after the large-step phase, the same in every cell
    quick_mode: bool = False  # the base experiment's quick() config (fewer iterations)

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
        self.base_config().validate()

    def quick(self) -> "PhaseConfig":
        """Fewer iterations (the base's quick config) on the grid's corners and middle, for CI."""
        def corners(values):
            return tuple(sorted({values[0], values[len(values) // 2], values[-1]}))
        return dataclasses.replace(self, quick_mode=True, lrs=corners(self.lrs), fractions=corners(self.fractions))

    def cells(self) -> list[tuple[float, float]]:
        """(eta, f) of every cell, eta-major: cell i is row i // len(fractions), column i % len(fractions)."""
        return [(lr, f) for lr in self.lrs for f in self.fractions]

    def base_config(self):
        base = get(self.experiment).config
        base = base.quick() if self.quick_mode else base
        timing = "after" if self.experiment == "diag_sgd" else "before"  # as the base experiment divides
        schedules = [Schedule(lr, ((f, lr / self.final_lr),), decay_timing=timing) for lr, f in self.cells()]
        if self.experiment == "diag_sgd":
            from .diag import DiagRun
            runs = tuple(DiagRun(_label(lr, f), "sgd", s) for (lr, f), s in zip(self.cells(), schedules))
            extra = {}
        else:
            from .relu import ReluRun
            runs = tuple(ReluRun(_label(lr, f), s) for (lr, f), s in zip(self.cells(), schedules))
            extra = {"neuron_movement": False}
        return dataclasses.replace(base, runs=runs, grid_early=0, grid_spaced=2, sharpness_points=0, **extra)

    def trained_config(self, n_seeds: int):
        """What one round trains (for the memory check): the base config with every cell, n_seeds each."""
        return self.base_config(), n_seeds


def _label(lr: float, fraction: float) -> str:
    return f"η={lr:g}, f={fraction:g}"


def run(config: PhaseConfig, n_seeds: int = 5, progress=None) -> dict:
    """Every cell of the grid, batched: the base experiment's run on the base config with one run per cell."""
    config.validate()
    base = get(config.experiment)
    results = base.run(config.base_config(), n_seeds=n_seeds, progress=progress)
    for record, (lr, fraction) in zip(results["runs"], config.cells()):
        record["lr"], record["fraction"] = lr, fraction
    results.pop("data", None)  # the base figures' scatter of the training set: not drawn here
    results["base_config"] = results.pop("config")  # "config" is the phase config (run_experiment sets it)
    results["phase"] = {"base": config.experiment, "lrs": list(config.lrs), "fractions": list(config.fractions),
                        "final_lr": config.final_lr, "maps": [list(m) for m in MAPS[config.experiment]]}
    return results


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
    """Median final `metric` over each cell's surviving seeds (NaN where none survived)."""
    def median(run):
        values = [s[metric] for s in run["final_per_seed"] if not s["diverged"] and s.get(metric) is not None]
        return float(np.median(values)) if values else np.nan
    return cell_grid(results, median)


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


def grid_description(results: dict) -> str:
    """'η 0.05..0.32 (12) × f 0.05..0.9 (8), then η=0.05': the grid in one line."""
    phase = results["phase"]
    lrs, fractions = phase["lrs"], phase["fractions"]
    return (f"η {lrs[0]:g}..{lrs[-1]:g} ({len(lrs)}) × f {fractions[0]:g}..{fractions[-1]:g} ({len(fractions)}), "
            f"then η={phase['final_lr']:g}")


def headline(results: dict) -> str:
    """The map in numbers: where each metric is lowest, and the 50%-divergence step size across f."""
    phase = results["phase"]
    parts = []
    for metric, title, _ in phase["maps"]:
        values = median_map(results, metric)
        if np.isfinite(values).any():
            i, j = np.unravel_index(np.nanargmin(values), values.shape)
            parts.append(f"lowest median {metric.replace('_', ' ')} {values[i, j]:.3g} at η={phase['lrs'][i]:g}, "
                         f"f={phase['fractions'][j]:g}")
    edge = boundaries(results)
    shown = [f"{e:.3g}" if np.isfinite(e) else "beyond the grid" for e in edge]
    parts.append(f"50%-divergence η from f={phase['fractions'][0]:g} to {phase['fractions'][-1]:g}: "
                 + " / ".join(shown))
    return "; ".join(parts)


def _config(experiment, lrs, fractions, final_lr):
    return PhaseConfig(experiment=experiment, lrs=tuple(lrs), fractions=tuple(fractions), final_lr=final_lr)


def _figures(results):
    from .phase_figures import figures
    return figures(results)


FRACTIONS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)

PHASE_DIAG = Experiment(
    name="phase_diag",
    title="Diagonal nets (diag_sgd data): map over the initial step size and the end of the large-step phase",
    # finer near the edge (0.26-0.30); the bottom row keeps the final step throughout
    config=_config("diag_sgd", (0.1, 0.15, 0.2, 0.24, 0.26, 0.27, 0.275, 0.28, 0.285, 0.29, 0.3, 0.32),
                   FRACTIONS, 0.1),
    run=run,
    figures=_figures,
)

PHASE_RELU = Experiment(
    name="phase_relu",
    title="Two-layer ReLU teacher-student (relu_two_layer data): map over the step size and the decay point",
    # finer near the edge (0.38-0.46), and f from 0.02: these nets diverge within the first 5% of training
    config=_config("relu_two_layer", (0.1, 0.2, 0.3, 0.34, 0.36, 0.38, 0.39, 0.4, 0.41, 0.42, 0.44, 0.46, 0.5, 0.6),
                   (0.02, *FRACTIONS), 0.1),
    run=run,
    figures=_figures,
)
