"""Speed of the diagonal-net engine (not a test).  Run: .venv/bin/python benchmarks/bench_diag.py [--repeats N]

1. Cost of one batched SGD / GD step for R = 1 and R = 64 runs (median of repeats), and the per-run ratio.
2. Wall time of `python -m largestep reproduce diag_sgd diag_gd` at full scale with 1 and 5 seeds (fresh
   process each, startup and figures included), with the training / metrics split from the results files,
   against the paper's own code (whole processes, one seed: bench_experiments.PAPER_SECONDS).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench_experiments import PAPER_SECONDS
from largestep import diag_nets
from largestep.data import sparse_regression

PAPER_SECONDS_ONE_SEED = PAPER_SECONDS["diag_sgd"] + PAPER_SECONDS["diag_gd"]


def step_seconds(algorithm: str, rows: int, steps: int, repeats: int) -> float:
    data = sparse_regression(80, 200, 20)
    x, y = data.x_train, data.y_train
    times = []
    for _ in range(repeats):
        u, v = np.full((rows, 200), 0.1), np.zeros((rows, 200))
        etas = np.full((steps, rows), 0.01)
        scratch = [np.empty_like(u) for _ in range(3)]
        start = time.perf_counter()
        if algorithm == "sgd":
            idx = np.random.default_rng(0).integers(0, len(x), (steps, rows))
            diag_nets._sgd_steps(u, v, x[idx], y[idx], etas, scratch)
        else:
            diag_nets._gd_steps(u, v, x, y, etas, scratch)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def reproduce_seconds(seeds: int, repeats: int) -> tuple[float, dict]:
    walls, splits = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "largestep", "reproduce", "diag_sgd", "diag_gd", "--seeds", str(seeds),
                            "--out", out, "--no-progress"], check=True, capture_output=True)
            walls.append(time.perf_counter() - start)
            split = {"train": 0.0, "metrics": 0.0}
            for name in ("diag_sgd", "diag_gd"):
                seconds = json.loads((Path(out) / f"{name}.json").read_text())["seconds"]
                for key in split:
                    split[key] += seconds[key]
            splits.append(split)
    best = walls.index(statistics.median(walls)) if repeats % 2 else 0
    return statistics.median(walls), splits[best]


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
    print("reproduce diag_sgd diag_gd, full scale (median wall time of fresh processes)")
    for seeds, repeats in ((1, args.repeats), (5, max(1, args.repeats // 2))):
        wall, split = reproduce_seconds(seeds, repeats)
        print(f"  --seeds {seeds}: {wall:5.1f} s  (training {split['train']:.1f} s, metrics {split['metrics']:.1f} s; "
              f"paper's code, 1 seed: {PAPER_SECONDS_ONE_SEED:.0f} s -> {PAPER_SECONDS_ONE_SEED / wall:.1f}x "
              f"{'faster' if wall < PAPER_SECONDS_ONE_SEED else 'slower'})")


if __name__ == "__main__":
    main()
