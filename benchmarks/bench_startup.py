"""What a command costs before it computes anything (not a test).  `make benchmark` runs it.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 5]

Fresh processes, wall seconds, median of --repeats, taking turns:
  listing        `python -m largestep reproduce --list` (loads neither torch, matplotlib nor numba)
  numpy import   importing a numpy-only experiment (`largestep.experiments.diag`)
  numba          importing numba, loading its registries, and the first call of a compiled loop (from numba's
                 cache), as `largestep.kernels` does it (scipy.linalg and cffi held back) and as numba alone
                 would (they load where installed); the ratio of the two.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FIRST_CALL = """
import sys, time
import numpy as np
start = time.perf_counter()
import numba
if sys.argv[1] == "numba-alone":  # numba's own first call: its registries load whatever they import
    from numba.core.registry import cpu_target
    cpu_target.target_context.refresh()
from largestep import kernels
u, v = np.ones((2, 3)), np.zeros((2, 3))
kernels.diag_gd_steps(u, v, np.ones((4, 3)), np.full((3, 4), 0.25), np.ones(4), np.full((2, 5), 0.1))
print(time.perf_counter() - start)
"""


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def inside(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", FIRST_CALL, mode], check=True, capture_output=True, text=True,
                         cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    inside("largestep")  # compiles the loops into numba's cache if it is empty
    times = {"listing": [], "numpy import": [], "numba (largestep.kernels)": [], "numba alone": []}
    for _ in range(args.repeats):
        times["listing"].append(wall([sys.executable, "-m", "largestep", "reproduce", "--list"]))
        times["numpy import"].append(wall([sys.executable, "-c", "import largestep.experiments.diag"]))
        times["numba (largestep.kernels)"].append(inside("largestep"))
        times["numba alone"].append(inside("numba-alone"))
    medians = {name: statistics.median(values) for name, values in times.items()}
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"start-up, wall seconds, median of {args.repeats} fresh processes (load average {load})")
    for name, value in medians.items():
        print(f"  {name:28s} {value:6.2f} s")
    installed = [m for m in ("scipy", "cffi") if _installed(m)]
    print(f"  numba alone / largestep.kernels: {medians['numba alone'] / medians['numba (largestep.kernels)']:.2f}x"
          f" (installed here: {', '.join(installed) or 'neither scipy nor cffi'})")


def _installed(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    main()
