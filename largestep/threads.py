"""How many threads BLAS (numpy's OpenBLAS) and torch may use while largestep trains and measures.

The toy models' linear algebra is small: many LAPACK calls on matrices of at most a few hundred rows.  Threads
cost more than they give there, and on a busy machine spinning OpenBLAS threads made the ReLU metrics 3-20x
slower (a notebook that imported matplotlib, hence numpy, before largestep: relu_1d's metrics 13 s against
3.8 s on this project's 2-core machine, 92 s against 2.4 s on another).  So the work runs inside
`limited_threads()`, which sets the limit where the work is, whatever was imported first (an environment
variable such as OPENBLAS_NUM_THREADS only acts before numpy loads).  LARGESTEP_THREADS=N raises it.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

THREADS_ENV = "LARGESTEP_THREADS"


def thread_count() -> int:
    """LARGESTEP_THREADS when set to a whole number >= 1, else 1."""
    value = os.environ.get(THREADS_ENV, "").strip()
    return int(value) if value.isdigit() and int(value) >= 1 else 1


@contextmanager
def limited_threads(count: int | None = None):
    """Inside the block, BLAS/OpenMP thread pools already loaded and torch (if loaded) use at most `count`
    threads (default `thread_count()`); everything is restored afterwards.  Code that loads torch inside the
    block and computes with it (the sharpness) enters the block again after loading it."""
    from threadpoolctl import threadpool_limits

    count = thread_count() if count is None else count
    torch = sys.modules.get("torch")
    previous = torch.get_num_threads() if torch is not None else None
    with threadpool_limits(limits=count):
        if torch is not None:
            torch.set_num_threads(count)
        try:
            yield
        finally:
            if torch is not None:
                torch.set_num_threads(previous)
