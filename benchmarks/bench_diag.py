"""Speed of the diagonal-net engine (not a test).  Run: .venv/bin/python benchmarks/bench_diag.py [--repeats N]

1. Cost of one batched SGD / GD step for R = 1 and R = 64 runs (median of repeats), and the per-run ratio.
2. Wall time of `python -m largestep reproduce diag_sgd` and `diag_gd` at full scale with 1 and 5 seeds (fresh
   process each, startup and figures included, our sharpness metric off), with the training / metrics split
   from the results files.  Against the paper's code: benchmarks/bench_vs_paper.py.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from largestep import kernels
from largestep.data import sparse_regression

ROOT = Path(__file__).resolve().parents[1]


def whole_process(source: Path, names: list[str], seeds: int = 1) -> tuple[float, float, dict]:
    """(wall, CPU, the results' own seconds per name) of one `python -m largestep reproduce NAMES --seeds N` from
    `source`, JSON and figures written to a scratch directory, one BLAS thread; our sharpness metric off (the
    paper's work only)."""
    env = {**os.environ, "PYTHONPATH": str(source), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "largestep", "reproduce", *names, "--seeds", str(seeds),
                               "--out", out, "--no-progress", "--set", "sharpness_points=0"],
                              capture_output=True, text=True, env=env, cwd=out)
        wall = time.perf_counter() - start
        if done.returncode not in (0, 1):  # 1: a robust claim failed, which few seeds may do; the work was done
            raise RuntimeError(f"{names} in {source} failed:\n{done.stderr[-2000:]}")
        seconds = {name: json.loads((Path(out) / f"{name}.json").read_text())["seconds"] for name in names}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), seconds


def step_seconds(algorithm: str, rows: int, steps: int, repeats: int) -> float:
    data = sparse_regression(80, 200, 20)
    x, y = data.x_train, data.y_train
    x_t_over_n = np.ascontiguousarray(x.T / len(x))
    idx = np.random.default_rng(0).integers(0, len(x), (rows, steps))
    times = []
    for repeat in range(repeats + 1):  # the first compiles the kernel or loads it from numba's cache: not timed
        u, v = np.full((rows, 200), 0.1), np.zeros((rows, 200))
        etas = np.full((rows, steps), 0.01)
        start = time.perf_counter()
        if algorithm == "sgd":
            kernels.diag_sgd_steps(u, v, x, y, idx, etas)
        else:
            kernels.diag_gd_steps(u, v, x, x_t_over_n, y, etas)
        if repeat:
            times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def reproduce_seconds(name: str, seeds: int, repeats: int) -> tuple[float, dict]:
    """Median wall seconds of whole `reproduce NAME` processes (whole_process: the paper's work only) and the
    training / metrics split of the median one."""
    runs = sorted(whole_process(ROOT, [name], seeds) for _ in range(repeats))
    wall, _, seconds = runs[len(runs) // 2]
    return wall, seconds[name]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-reproduce", action="store_true")
    args = parser.parse_args()
    print("step cost (median of", args.repeats, "repeats)")
    for algorithm in ("sgd", "gd"):
        one = step_seconds(algorithm, 1, 20_000, args.repeats)
        many = step_seconds(algorithm, 64, 5_000, args.repeats)
        print(f"  {algorithm.upper():3s} R=1: {one * 1e6:6.2f} us/step   R=64: {many * 1e6:7.2f} us/step "
              f"= {many / 64 * 1e6:5.2f} us/step/run   batching gain per run: {one / (many / 64):4.1f}x")
    if args.skip_reproduce:
        return
    print("reproduce, full scale, one BLAS thread (median wall time of fresh processes; our sharpness metric off)")
    for seeds, repeats in ((1, args.repeats), (5, max(1, args.repeats // 2))):
        for name in ("diag_sgd", "diag_gd"):
            wall, split = reproduce_seconds(name, seeds, repeats)
            print(f"  {name} --seeds {seeds}: {wall:5.1f} s  (training {split['train']:.1f} s, "
                  f"metrics {split['metrics']:.1f} s)")
    print("  against the paper's code: benchmarks/bench_vs_paper.py --paper-dir DIR")

if __name__ == "__main__":
    main()
