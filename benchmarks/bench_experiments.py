"""Where each experiment's time goes, and what batching buys per step.  `make benchmark` runs it first.

    .venv/bin/python benchmarks/bench_experiments.py [--seeds 1] [--only NAME ...] [--clock cpu|wall]
                                                     [--repeats 3] [--compare DIR] [--skip-steps]

1. Per experiment, one fresh process doing what `python -m largestep reproduce NAME --seeds N` does (all but
   writing the JSON), in phases: start-up (interpreter, the command's imports, and matplotlib's, which
   every reproduce needs to draw), train, metrics, the rest of
   the run (data, surfaces, ...), figures (PNG + PDF), animation (loss_surface's GIF), and the total.
   The same work as the paper's code: the sharpness (an optional metric of ours) is switched off here.
   Seconds are CPU seconds by default: on a shared machine CPU time is what the work costs, wall time is what
   the other jobs leave of it (--clock wall for wall time).  Against the paper's own code, on this machine:
   benchmarks/bench_vs_paper.py --paper-dir DIR.
   --compare DIR runs the same in another source tree (e.g. `git archive OLD_COMMIT | tar -x -C DIR`) and
   prints the ratios old / new per phase, both measured in this one run, the two trees' processes alternating.
2. Per-step and per-evaluation costs of our batched kernels at the experiments' batch sizes against the
   same work written plainly, one run at a time (benchmarks/plain_loops.py), as ratios.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PHASES = ("start-up", "train", "metrics", "run other", "figures", "animation", "total")

# What one `reproduce NAME` process does, phase by phase; prints a JSON line.  With clock=cpu, the trainers'
# own train/metrics split is switched to CPU time too (their modules' `time` is replaced in this process).
CHILD = r"""
import json, os, sys, tempfile, time, types
from pathlib import Path
clock = time.process_time if sys.argv[3] == "cpu" else time.perf_counter
import largestep.__main__
from largestep import experiments
name, seeds = sys.argv[1], int(sys.argv[2])
exp = experiments.get(name)
imported = clock()
if sys.argv[3] == "cpu":
    import importlib
    for module in ("sweep", "seeds", "diag_nets", "relu_nets", "stabilization"):  # wherever a tree times its phases
        try:
            module = importlib.import_module(f"largestep.{module}")
        except ImportError:  # a tree without this module
            continue
        if hasattr(module, "time"):
            module.time = types.SimpleNamespace(perf_counter=time.process_time)
config = exp.config
if getattr(config, 'sharpness_points', 0):  # an extra of ours the paper's code does not compute: timed apart
    import dataclasses
    config = dataclasses.replace(config, sharpness_points=0)
results = experiments.run_experiment(exp, config=config, n_seeds=seeds, progress=False)
before_mpl = clock()
import matplotlib.pyplot as plt  # every reproduce draws: its import counts as start-up, not as drawing
ran = clock()
with tempfile.TemporaryDirectory() as out:
    for stem, fig in exp.figures(results).items():
        try:
            from largestep.plotting import save_formats
            save_formats(fig, Path(out) / stem)
        except ImportError:  # an older tree: one savefig per file
            from largestep.results import save_figure
            for ext in ("png", "pdf"):
                save_figure(fig, Path(out) / f"{stem}.{ext}")
        plt.close(fig)
    drawn = clock()
    if exp.extras is not None:
        exp.extras(results, out)
    done = clock()
seconds = results["seconds"]
print(json.dumps({"imported": imported + (ran - before_mpl), "run": before_mpl - imported, "train": seconds.get("train", 0.0),
                  "metrics": seconds.get("metrics", 0.0), "figures": drawn - ran, "animation": done - drawn,
                  "inside": done - imported - (ran - before_mpl), "cpu_total": time.process_time() + sum(os.times()[2:4])}))  # + the train.py processes deep_mnist1d waits for
"""


def run_children(sources: list[Path], name: str, seeds: int, clock: str, repeats: int) -> list[dict]:
    """Per source tree, the median per phase over `repeats` fresh processes (on a shared machine single runs
    swing); the trees take turns (A B A B ...), so that the load drifting over the run hits both alike."""
    import statistics

    runs = [[] for _ in sources]
    for _ in range(repeats):
        for source, done in zip(sources, runs):
            done.append(run_child(source, name, seeds, clock))
    return [{phase: statistics.median(r[phase] for r in done) for phase in PHASES} for done in runs]


def run_child(source: Path, name: str, seeds: int, clock: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(source), "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", CHILD, name, str(seeds), clock], capture_output=True, text=True,
                         env=env, cwd=tempfile.gettempdir())
    wall = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{name} in {source} failed:\n{out.stderr[-2000:]}")
    r = json.loads(out.stdout.strip().splitlines()[-1])
    total = r["cpu_total"] if clock == "cpu" else wall
    startup = r["imported"] if clock == "cpu" else wall - r["inside"]
    return {"start-up": startup, "train": r["train"], "metrics": r["metrics"],
            "run other": max(r["run"] - r["train"] - r["metrics"], 0.0), "figures": r["figures"],
            "animation": r["animation"], "total": total}


def available_in(source: Path) -> set[str]:
    """The experiment names another source tree knows (an older tree lacks the newer experiments)."""
    out = subprocess.run([sys.executable, "-c", "import json\nfrom largestep import experiments\n"
                          "print(json.dumps([experiments.__file__, list(experiments.available())]))"],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(source)},
                         cwd=tempfile.gettempdir())
    found = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
    # Where DIR holds no package, Python finds the installed one (this tree): the comparison would be with itself.
    if found is None or not Path(found[0]).resolve().is_relative_to(source.resolve()):
        raise SystemExit(f"--compare {source}: no largestep package there (a source tree holds largestep/)")
    return set(found[1])


def load() -> str:
    return "load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


def bench_experiments(names, seeds: int, clock: str, compare: Path | None, repeats: int) -> None:
    compared_names = available_in(compare) if compare is not None else set()
    print(f"1. whole experiments, full scale, --seeds {seeds}, {clock.upper()} seconds, median of {repeats} "
          f"processes each ({load()}, {os.cpu_count()} cores)")
    header = f"{'experiment':18s}" + "".join(f"{p:>10s}" for p in PHASES)
    print(header)
    for name in names:
        other = [compare] if name in compared_names else []
        timed = run_children([ROOT] + other, name, seeds, clock, repeats)
        new = timed[0]
        cells = "".join(f"{new[p]:10.2f}" for p in PHASES)
        print(f"{name:18s}{cells}", flush=True)
        if compare is not None and not other:
            print(f"{'  before':18s}  (not an experiment of {compare})", flush=True)
        elif compare is not None:
            old = timed[1]
            print(f"{'  before':18s}" + "".join(f"{old[p]:10.2f}" for p in PHASES), flush=True)
            print(f"{'  before/after':18s}" + "".join(
                f"{old[p] / new[p]:9.1f}x" if new[p] > 0.005 else f"{'-':>10s}" for p in PHASES), flush=True)
        if name == "loss_surface" and seeds == 1:
            computation = new["train"] + new["metrics"] + new["run other"]
            print(f"  loss_surface computation {computation:.2f} s, with figures and animation {new['total']:.2f} s")
            ffmpeg = shutil.which("ffmpeg")
            print("  animation: " + (f"GIF and MP4 (ffmpeg {ffmpeg}, whose encoding " + (
                "runs in its own process, not counted in CPU seconds)" if clock == "cpu" else "overlaps ours)")
                if ffmpeg else "GIF only (no ffmpeg on PATH)"))
    print(f"  ({load()} at the end; against the paper's code on this machine: benchmarks/bench_vs_paper.py)")


def median_cpu(fn, repeats: int = 5) -> float:
    from bench_valley import median_seconds

    return median_seconds(fn, repeats, clock=time.process_time)


def bench_steps() -> None:
    import numpy as np

    import plain_loops
    from largestep import kernels, experiments, metrics, relu_nets
    from largestep.data import sparse_regression
    from largestep.experiments import relu

    print(f"\n2. per step and run, batched (R runs at once) vs the plain per-run loop, CPU ({load()})")

    def line(label, ours, plain, rows):
        print(f"  {label:44s} R={rows:<3d} ours {ours * 1e6:8.2f} us   plain {plain * 1e6:8.2f} us   "
              f"plain/ours {plain / ours:6.1f}x")

    steps = 2000
    data = sparse_regression(80, 200, 20)
    x, y = data.x_train, data.y_train
    rows = 20  # 4 runs x 5 seeds

    def sgd():
        u, v = np.full((rows, 200), 0.1), np.zeros((rows, 200))
        idx = np.random.default_rng(0).integers(0, len(x), (rows, steps))
        kernels.diag_sgd_steps(u, v, x, y, idx, np.full((rows, steps), 0.01))

    sgd()  # compiles the kernel, or loads it from numba's cache
    line("diag SGD step (n=80, d=200)", median_cpu(sgd) / steps / rows,
         median_cpu(lambda: plain_loops.diag_sgd(x, y, steps)) / steps, rows)

    data = sparse_regression(40, 100, 20)
    x, y = data.x_train, data.y_train
    x_t_over_n = np.ascontiguousarray(x.T / len(x))

    def gd(rows):
        def go():
            u, v = np.full((rows, 100), 0.1), np.zeros((rows, 100))
            kernels.diag_gd_steps(u, v, x, x_t_over_n, y, np.full((rows, steps), 0.01))
        go()
        return median_cpu(go) / steps / rows

    line("diag GD step (n=40, d=100)", gd(4), median_cpu(lambda: plain_loops.diag_gd(x, y, steps)) / steps, 4)
    for rows in (4, 64):
        ours = gd(rows)
        batched = median_cpu(lambda: plain_loops.diag_gd_batched(x, y, steps, rows)) / steps / rows
        print(f"  GD kernel (compiled, batch-invariant) vs all rows in one numpy matmul, R={rows}: {ours * 1e6:.2f} vs "
              f"{batched * 1e6:.2f} us per run-step = {ours / batched:.2f}x")

    config = experiments.get("relu_two_layer").config
    data = relu.make_data(config)
    rows = 20
    layers = relu_nets.stack([relu.make_student(config, s % 5) for s in range(rows)])
    single = [(w[0], None if b is None else b[0]) for w, b in layers]

    def relu_sgd():
        stacked = relu_nets.copy_layers(layers)
        relu_nets.train(stacked, data.x_train, data.y_train, np.full((rows, steps), 1e-3), range(rows),
                        np.array([steps]), lambda k: None)

    relu_sgd()  # compiles the kernel, or loads it from numba's cache

    line("ReLU SGD step (two-layer, d=2, m=20)", median_cpu(relu_sgd) / steps / rows,
         median_cpu(lambda: plain_loops.relu_sgd(single, data.x_train, data.y_train, steps)) / steps, rows)

    for name in ("relu_1d", "relu_multi_layer"):
        config = experiments.get(name).config
        data = relu.make_data(config)
        x_rank = relu.rank_points(config, data)
        layers = relu_nets.stack([relu.make_student(config, s) for s in range(rows)])
        ours = median_cpu(lambda: metrics.rank_from_jacobian(relu_nets.jacobian_factor(layers, x_rank),
                                                             config.rank_tol), 3) / rows
        got = metrics.rank_from_jacobian(relu_nets.jacobian_factor(layers, x_rank), config.rank_tol)
        single = [(w[0], None if b is None else b[0]) for w, b in layers]
        want, _ = plain_loops.relu_jacobian_rank(single, x_rank, config.rank_tol)
        assert got[0] == want, (name, got[0], want)
        plain = median_cpu(lambda: plain_loops.relu_jacobian_rank(single, x_rank, config.rank_tol), 3)
        line(f"Jacobian rank, one evaluation ({name}, {len(x_rank)} points)", ours, plain, rows)


def main(argv=None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=None, help="experiments (default: all)")
    parser.add_argument("--clock", choices=("cpu", "wall"), default="cpu")
    parser.add_argument("--compare", type=Path, default=None, metavar="DIR",
                        help="another source tree to time the same way, for before/after ratios")
    parser.add_argument("--repeats", type=int, default=3, help="processes per experiment (median per phase)")
    parser.add_argument("--skip-steps", action="store_true", help="only the whole experiments")
    args = parser.parse_args(argv)
    from largestep import experiments

    bench_experiments(args.only or experiments.available(), args.seeds, args.clock, args.compare, args.repeats)
    if not args.skip_steps:
        from largestep.threads import limited_threads

        with limited_threads():  # as the experiments run it (torch's eigen-solver included)
            bench_steps()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
