"""Cost of the phase maps (not a test).  Run: .venv/bin/python benchmarks/bench_phase.py [--only NAME ...] [--seeds 5]

Each experiment runs at full scale in a fresh process, as `python -m largestep reproduce NAME` does (figures
included, the JSON not written), and prints: runs (cells x seeds) trained, survivors, CPU and wall seconds of
training, metrics, figures and the whole process, and the CPU cost per trained run and per surviving run.
The paper's repository has no code for the phase maps; the cost of its code per run of diag_sgd and
relu_two_layer, on this machine: benchmarks/bench_vs_paper.py.  CPU time is what the work costs on a shared
machine; wall time is what the other jobs leave of it.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time, types
start_wall = time.perf_counter()
from pathlib import Path
from largestep import experiments, seeds
seeds.time = types.SimpleNamespace(perf_counter=time.process_time)  # the trainers' train/metrics split in CPU s
exp = experiments.get(sys.argv[1])
cpu0, wall0 = time.process_time(), time.perf_counter()
results = experiments.run_experiment(exp, n_seeds=int(sys.argv[2]), progress=False)
cpu1, wall1 = time.process_time(), time.perf_counter()
import matplotlib.pyplot as plt
from largestep.plotting import save_formats
with tempfile.TemporaryDirectory() as out:
    for stem, fig in exp.figures(results).items():
        save_formats(fig, Path(out) / stem)
        plt.close(fig)
cpu2, wall2 = time.process_time(), time.perf_counter()
runs = results["runs"]
print(json.dumps({"tried": sum(r["seeds_tried"] for r in runs), "cells": len(runs),
                  "survivors": sum(r["seeds_tried"] - r["seeds_diverged"] for r in runs),
                  "wall": {"run": wall1 - wall0, "figures": wall2 - wall1, "process": wall2 - start_wall},
                  "cpu": dict(train=results["seconds"]["train"], metrics=results["seconds"]["metrics"],
                              run=cpu1 - cpu0, figures=cpu2 - cpu1, process=cpu2)}))
"""


def child(name: str, seeds: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(seeds)], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", default=["phase_diag", "phase_relu"])
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)
    for name in args.only:
        wall = child(name, args.seeds)
        c, w = wall["cpu"], wall["wall"]
        print(f"{name}: {wall['cells']} cells, {args.seeds} surviving seeds asked for each: {wall['tried']} runs "
              f"trained, {wall['survivors']} survived")
        print(f"  CPU s:  train {c['train']:.1f}, metrics {c['metrics']:.1f}, run {c['run']:.1f}, "
              f"figures {c['figures']:.1f}, whole process {c['process']:.1f}")
        print(f"  wall s: run {w['run']:.1f}, figures {w['figures']:.1f}, whole process {w['process']:.1f}")
        print(f"  CPU s per run trained {c['run'] / wall['tried']:.3f}, per surviving run "
              f"{c['run'] / wall['survivors']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
