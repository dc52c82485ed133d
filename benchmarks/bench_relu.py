"""Speed of the four ReLU experiments at full scale, with the training / metrics split.

    .venv/bin/python benchmarks/bench_relu.py [--seeds 1] [--repeats 1] [--only relu_1d ...]

Reports, per experiment, the median wall seconds over repeats of `run_experiment` (what
`python -m largestep reproduce NAME --seeds N` runs, without writing files), the seconds spent training
and computing metrics, the rows trained (runs x seeds tried, diverged seeds included), and the ratio
against the paper's own code on this machine for the same work with one seed (the reference times
below were measured by the issue's author: per-example backward loops and a full SVD at every
evaluation point, one Python training loop per run).  Timings on a shared machine are noisy: compare
ratios, and rerun when the load is low.
"""
from __future__ import annotations

import argparse
import statistics
import time

from largestep import experiments

# Seconds of the paper's code for one seed of each experiment on this 2-core machine (from the issue).
PAPER_CODE_SECONDS = {"relu_1d": 61.0, "relu_1d_overreg": 61.0, "relu_two_layer": 33.0, "relu_multi_layer": 83.0}


def bench(name: str, seeds: int, repeats: int) -> dict:
    exp = experiments.get(name)
    walls, splits = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = experiments.run_experiment(exp, n_seeds=seeds, progress=False)
        walls.append(time.perf_counter() - start)
        splits.append(results["seconds"])
    rows = sum(r["seeds_tried"] for r in results["runs"])
    return {
        "name": name,
        "wall": statistics.median(walls),
        "train": statistics.median(s.get("train", 0.0) for s in splits),
        "metrics": statistics.median(s.get("metrics", 0.0) for s in splits),
        "rows": rows,
        "diverged": sum(r["seeds_diverged"] for r in results["runs"]),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=list(PAPER_CODE_SECONDS))
    args = parser.parse_args(argv)
    print(f"full scale, --seeds {args.seeds}, median of {args.repeats} (shared machine: timings are noisy)")
    print(f"{'experiment':18s} {'wall s':>7s} {'train s':>8s} {'metrics s':>9s} {'rows':>5s} "
          f"{'paper s':>8s} {'speed-up':>8s}")
    total, paper_total = 0.0, 0.0
    for name in args.only:
        r = bench(name, args.seeds, args.repeats)
        paper = PAPER_CODE_SECONDS[name] * args.seeds
        total += r["wall"]
        paper_total += paper
        print(f"{name:18s} {r['wall']:7.1f} {r['train']:8.1f} {r['metrics']:9.1f} {r['rows']:5d} "
              f"{paper:8.0f} {paper / r['wall']:7.1f}x   ({r['diverged']} diverged rows)")
    print(f"{'total':18s} {total:7.1f} {'':8s} {'':9s} {'':5s} {paper_total:8.0f} {paper_total / total:7.1f}x")
    print("paper s: the paper's code, one seed per run, times the seeds asked for (its divergent seeds not "
          "redrawn, so for --seeds > 1 the comparison favours it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
