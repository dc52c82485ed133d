"""What the phase maps must show, as claims (`largestep.claims`) on their results: cells are named by (eta, f)
and found in the results at check time, the boundary is `phase.boundaries` of the stored counts."""
from __future__ import annotations

import numpy as np

from ..claims import Claim, final_values, median, paired_below, spread
from .phase import boundaries, divergence_fraction, median_map


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
                f"{spread(ra, metric, fmt)} vs {spread(rb, metric, fmt)}; paired seeds lower: {k}/{n}")
    return check(a, b)


def lowest_cell_past_boundary(metric: str):
    """The cell with the lowest median lies at or above its column's 50%-divergence step size."""
    def check(results, others):
        values = median_map(results, metric)
        i, j = np.unravel_index(np.nanargmin(values), values.shape)
        lr, edge = results["phase"]["lrs"][i], boundaries(results)[j]
        fraction = divergence_fraction(results)[i, j]
        return (bool(np.isfinite(edge) and lr >= edge),
                f"lowest median {values[i, j]:.3g} at η={lr:g}, f={results['phase']['fractions'][j]:g}, where "
                f"{fraction:.0%} of the seeds tried diverged; that column's 50% boundary: η={edge:.3g}")
    return check


def boundary_spread(at_least: float | None = None, at_most: float | None = None):
    """The boundary's step size at the smallest f minus at the largest f: >= at_least and/or <= at_most."""
    def check(results, others):
        edge = boundaries(results)
        drop = edge[0] - edge[-1]
        holds = bool(np.isfinite(drop) and (at_least is None or drop >= at_least) and (at_most is None or abs(drop) <= at_most))
        return holds, "50%-divergence η per f: " + " / ".join(f"{e:.3g}" for e in edge)
    return check


PHASE_DIAG = [
    Claim("no sparsity away from the edge: every surviving seed of every cell with η <= 0.26 keeps all d "
          "coordinates (ℓ0 = d)", True, every_seed_at_least("l0_norm", 0.26, "d")),
    Claim("along η = 0.28 a longer large-step phase is sparser: every surviving seed at f = 0.9 ends with a lower "
          "ℓ0 than every surviving seed at f = 0.05", True, cell_seeds_below("l0_norm", (0.28, 0.9), (0.28, 0.05))),
    Claim("the longer the large-step phase, the smaller the step that diverges: the 50%-divergence η at f = 0.05 "
          "exceeds that at f = 0.9 by at least 0.01", True, boundary_spread(at_least=0.01)),
    Claim("the sparsest cell (median ℓ0) lies at or past its column's 50%-divergence boundary", True,
          lowest_cell_past_boundary("l0_norm")),
    Claim("along η = 0.27 the test loss falls with the length of the large-step phase (median, f = 0.9 vs 0.05)",
          False, cell_median_below("test_loss", (0.27, 0.9), (0.27, 0.05))),
    Claim("along η = 0.28, where the sparsity gain is, the test loss also falls with f (median, f = 0.9 vs 0.05)",
          False, cell_median_below("test_loss", (0.28, 0.9), (0.28, 0.05))),
]

PHASE_RELU = [
    Claim("divergence is decided early: the 50%-divergence η is the same (within 0.01) for every f", True,
          boundary_spread(at_most=0.01)),
    Claim("larger steps give sparser features: every surviving seed at η = 0.46 ends sparser than every surviving "
          "seed at η = 0.1 (f = 0.5)", True, cell_seeds_below("feature_sparsity", (0.46, 0.5), (0.1, 0.5))),
    Claim("the sparsest cell (median feature sparsity) lies at or past the 50%-divergence boundary", True,
          lowest_cell_past_boundary("feature_sparsity")),
    Claim("below the boundary (η = 0.38) a longer large-step phase gives sparser features (median, f = 0.9 vs "
          "0.02)", False, cell_median_below("feature_sparsity", (0.38, 0.9), (0.38, 0.02))),
    Claim("below the boundary (η = 0.38) a longer large-step phase gives a lower test loss (median, f = 0.9 vs "
          "0.02)", False, cell_median_below("test_loss", (0.38, 0.9), (0.38, 0.02))),
    Claim("past the boundary (η = 0.46) a longer large-step phase gives sparser features (median, f = 0.9 vs 0.02)",
          False, cell_median_below("feature_sparsity", (0.46, 0.9), (0.46, 0.02))),
]
