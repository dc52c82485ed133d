"""largestep: reference implementation of 'SGD with large step sizes learns sparse features' (ICML 2023).

Modules, from the bottom up: schedules (step sizes), streams (random streams), data, stats (survivors'
statistics, rates with intervals), diag_nets / relu_nets / kernels (batched trainers), metrics, sharpness,
landscape, stabilization, seeds (divergence, survivors, the training loop, results records), threads (BLAS
and torch thread limits where the work runs), progress, results (JSON files: schema, atomic writes,
provenance), claims, plotting; experiments (one module per family: configs, run, figures, claims); readme,
compare and __main__ (the command line); notebooks (the notebook runner).
"""
import os

__version__ = "0.1.0"
QUICK_ENV = "LARGESTEP_QUICK"


def quick_mode() -> bool:
    """True when LARGESTEP_QUICK is set (CI runs notebooks and `reproduce` at small scale)."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")
