"""largestep: reference implementation of 'SGD with large step sizes learns sparse features' (ICML 2023).

Modules: schedules (step sizes), data, diag_nets (batched diagonal-net GD/SGD), metrics, sweep (seeds,
divergence, results records), plotting, experiments (the paper's experiments), results (JSON files).
"""
import os

__version__ = "0.1.0"
QUICK_ENV = "LARGESTEP_QUICK"


def quick_mode() -> bool:
    """True when LARGESTEP_QUICK is set (CI runs notebooks and `reproduce` at small scale)."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")
