"""How much faster than the paper's code, estimated two ways (not a test).

    .venv/bin/python benchmarks/bench_vs_paper.py --then DIR [--only NAME ...] [--repeats 3]

The paper's code was timed once, side by side with our code of that day (commit 196d2ae), on another machine:
whole `reproduce NAME --seeds 1` processes, one BLAS thread, medians (the speed issue's table, below).  Its
seconds cannot be compared with seconds measured here as they are: machines and their load differ.  So this
script times whole processes of the same command, one BLAS thread, for this tree and for that day's code
(DIR: `git archive 196d2ae | tar -x -C DIR`), taking turns (then, now, then, now, ...), and prints

  direct   paper's seconds / ours now                      (assumes this machine runs as fast as that one)
  chained  paper / ours then, both from the table, x ours then / ours now measured here in one run
           (assumes only that this machine slows both codes alike)

and `machine`, the table's seconds for that day's code over the seconds measured here for it: if the
machines differed by one factor, it would be the same for every experiment.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_experiments import PAPER_SECONDS

ROOT = Path(__file__).resolve().parents[1]

# Whole-process seconds of our code at commit 196d2ae, timed beside the paper's code (the speed issue's table).
OURS_THEN_SECONDS = {"diag_sgd": 14.6, "diag_gd": 20.6, "relu_two_layer": 24.1, "relu_1d": 27.5,
                     "relu_multi_layer": 24.0, "loss_surface": 36.7}


# Experiments whose config now computes our optional sharpness metric: off, as in bench_experiments (the paper's work only).
WITH_SHARPNESS = ("diag_sgd", "relu_two_layer")


def whole_process(source: Path, names: list[str], seeds: int = 1) -> tuple[float, float, dict]:
    """(wall, CPU, the results' own seconds per name) of one `python -m largestep reproduce NAMES --seeds N` from
    `source`, JSON and figures written to a scratch directory, one BLAS thread; our sharpness metric off where
    this tree has it (the paper's work only)."""
    extra = ["--set", "sharpness_points=0"] if source == ROOT and set(names) <= set(WITH_SHARPNESS) else []
    if source == ROOT and set(names) & set(WITH_SHARPNESS) and not extra:
        raise ValueError(f"time {sorted(set(names) & set(WITH_SHARPNESS))} apart: --set applies to every name")
    env = {**os.environ, "PYTHONPATH": str(source), "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "largestep", "reproduce", *names, "--seeds", str(seeds),
                               "--out", out, "--no-progress", *extra], capture_output=True, text=True, env=env, cwd=out)
        wall = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"{names} in {source} failed:\n{done.stderr[-2000:]}")
        seconds = {name: json.loads((Path(out) / f"{name}.json").read_text())["seconds"] for name in names}
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--then", type=Path, required=True, help="source tree of commit 196d2ae")
    parser.add_argument("--only", nargs="*", default=list(OURS_THEN_SECONDS), choices=list(OURS_THEN_SECONDS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not (args.then / "largestep" / "__main__.py").is_file():
        parser.error(f"--then {args.then}: no largestep package there (git archive 196d2ae | tar -x -C DIR)")
    print(f"whole processes, --seeds 1, one BLAS thread, wall seconds (CPU in brackets), median of {args.repeats}; "
          "load average {:.1f} {:.1f} {:.1f}, {} cores".format(*os.getloadavg(), os.cpu_count()))
    print(f"{'experiment':18s}{'then':>14s}{'now':>14s}{'then/now':>9s}{'paper':>8s}{'direct':>8s}{'chained':>8s}"
          f"{'machine':>8s}")
    for name in args.only:
        timed = {"then": [], "now": []}
        for _ in range(args.repeats):
            for label, source in (("then", args.then), ("now", ROOT)):
                timed[label].append(whole_process(source, [name])[:2])
        then, now = ({"wall": statistics.median(w for w, _ in timed[k]), "cpu": statistics.median(c for _, c in timed[k])}
                     for k in ("then", "now"))
        paper, filed = PAPER_SECONDS[name], OURS_THEN_SECONDS[name]
        speed_up = then["wall"] / now["wall"]
        print(f"{name:18s}{then['wall']:7.2f} ({then['cpu']:4.1f}){now['wall']:7.2f} ({now['cpu']:4.1f})"
              f"{speed_up:8.2f}x{paper:8.1f}{paper / now['wall']:7.1f}x{paper / filed * speed_up:7.1f}x"
              f"{filed / then['wall']:7.2f}x", flush=True)
    print("  load average {:.1f} {:.1f} {:.1f} at the end".format(*os.getloadavg()))
    if "loss_surface" in args.only:  # both trees write an MP4 beside the GIF where ffmpeg is on PATH
        ffmpeg = shutil.which("ffmpeg")
        print("  loss_surface's animation, in both trees: " + (f"GIF and MP4 (ffmpeg {ffmpeg})" if ffmpeg
                                                                 else "GIF only (no ffmpeg on PATH)"))


if __name__ == "__main__":
    main()
