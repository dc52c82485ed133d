"""largestep: reference implementation of 'SGD with large step sizes learns sparse features' (ICML 2023).

Modules: schedules (step sizes), data, diag_nets (batched diagonal-net GD/SGD), metrics, sweep (seeds,
divergence, results records), plotting, experiments (the paper's experiments), results (JSON files).
"""
import os
import sys

# The toy models' linear algebra is small: BLAS threads cost more than they give, and on a busy machine
# (a second job, a notebook kernel beside CI) spinning OpenBLAS threads slowed numpy here 3x.  Default
# numpy's OpenBLAS to one thread unless the user chose otherwise; this only acts before numpy is imported.
if "numpy" not in sys.modules:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
QUICK_ENV = "LARGESTEP_QUICK"


def quick_mode() -> bool:
    """True when LARGESTEP_QUICK is set (CI runs notebooks and `reproduce` at small scale)."""
    return os.environ.get(QUICK_ENV, "") not in ("", "0")
