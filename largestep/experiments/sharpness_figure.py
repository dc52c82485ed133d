"""The sharpness figure: top eigenvalue of the training loss's Hessian along training against 2/eta.

Full-batch gradient descent on a quadratic is stable while sharpness < 2/eta.  SGD with a large step keeps
the sharpness pinned near (or below) that line while the step is large; after a decay the line jumps up and
the sharpness is free to grow again.  Drawn from a results file alone: each run's step sizes are rebuilt
from the schedule it records.
"""
from __future__ import annotations

import numpy as np

from ..config import from_dict
from ..plotting import as_array, figure_style, panel_layout, run_colors, run_label, survival_note, titled
from ..schedules import Schedule


def step_at(run: dict, iterations: int) -> np.ndarray:
    """The step size the run takes right after each grid iteration (its last one at the end of training)."""
    steps = from_dict(Schedule, run["schedule"]).values(iterations)
    grid = np.asarray(run["curves"]["iteration"], dtype=np.int64)
    return steps[np.minimum(grid, iterations - 1)]


def sharpness_figure(results: dict):
    """One panel: each run's median sharpness over surviving seeds (band: interquartile range), at the grid
    points where it was measured, and the run's 2/eta as a dashed line in the same colour."""
    import matplotlib.pyplot as plt

    iterations = int(results["config"]["iterations"])
    with figure_style():
        fig, ax = plt.subplots(figsize=(7.5, 4.6), layout=panel_layout())
        for run, color in zip(results["runs"], run_colors(len(results["runs"]))):
            grid = np.asarray(run["curves"]["iteration"], dtype=float)
            ax.plot(grid, 2.0 / step_at(run, iterations), color=color, lw=1.0, ls="--")
            values = np.atleast_2d(as_array(run["curves"].get("sharpness", [])))
            measured = np.isfinite(values).any(0) if values.size else np.zeros(len(grid), bool)
            if not measured.any():  # no surviving seed
                ax.plot([], [], color=color, label=run_label(run))
                continue
            ax.plot(grid[measured], np.nanmedian(values[:, measured], 0), color=color, lw=1.5, label=run_label(run))
            if len(values) > 1:
                low, high = np.nanpercentile(values[:, measured], [25, 75], axis=0)
                ax.fill_between(grid[measured], low, high, color=color, alpha=0.2, lw=0)
        ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_title("top eigenvalue of the train loss's Hessian (solid) and 2/η (dashed)")
        ax.plot([], [], color="0.3", ls="--", lw=1.0, label="2/η of the run (same colour)")
        ax.legend(loc="best", fontsize=7)
        note = survival_note(results)
        fig.suptitle(titled(results, f"{results['experiment']}: sharpness along training against 2/η") + ("\n" + note if note else ""), fontsize=11)
    return fig
