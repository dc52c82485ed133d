"""Speed of the four ReLU experiments at full scale, with the training / metrics split.

    .venv/bin/python benchmarks/bench_relu.py [--seeds 1] [--repeats 1] [--only relu_1d ...] [--baseline]

Reports, per experiment, the median wall seconds over repeats of `run_experiment` (what
`python -m largestep reproduce NAME --seeds N` runs, without writing files), the seconds spent training
and computing metrics, and the rows trained (runs x seeds tried, diverged seeds included).  The work is the
paper's: our optional sharpness metric (on by default in relu_two_layer) is off.  Timings on a shared machine
are noisy: compare ratios, and rerun when the load is low.  Against the paper's own code, on this machine:
benchmarks/bench_vs_paper.py --paper-dir DIR.

--baseline also times, now and on this machine, the paper's procedure written plainly here (not the paper's
code): one seed, one Python loop of torch SGD steps per run on an nn.Sequential in float32, and at every
grid point the losses, the Jacobian by one backward pass per evaluation point, a full SVD, and the feature
sparsity.  Both sides run in this process, so their ratio holds whatever the machine.
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import numpy as np
import torch

from largestep.threads import limited_threads
from largestep import experiments, metrics, relu_nets
from largestep.experiments import relu
from largestep.seeds import evaluation_grid

NAMES = ("relu_1d", "relu_1d_overreg", "relu_two_layer", "relu_multi_layer")


def bench(name: str, seeds: int, repeats: int) -> dict:
    exp = experiments.get(name)
    config = dataclasses.replace(exp.config, sharpness_points=0)  # the paper's work: no sharpness
    walls, splits = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        results = experiments.run_experiment(exp, config=config, n_seeds=seeds, progress=False)
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


def _module(layers) -> torch.nn.Sequential:
    """An nn.Sequential (float32, like the paper's code) holding row 0 of stacked layers."""
    modules = []
    for l, (w, b) in enumerate(layers):
        linear = torch.nn.Linear(w.shape[2], w.shape[1], bias=b is not None)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w[0]))
            if b is not None:
                linear.bias.copy_(torch.from_numpy(b[0]))
        modules += [linear] + ([torch.nn.ReLU()] if l < len(layers) - 1 else [])
    return torch.nn.Sequential(*modules)


def baseline(name: str, seed: int = 0) -> float:
    """Seconds of the plain per-run procedure (see the module docstring) for one seed of every run."""
    config = experiments.get(name).config
    data = relu.make_data(config)
    x, y = torch.tensor(data.x_train, dtype=torch.float32), torch.tensor(data.y_train, dtype=torch.float32)
    x_test, y_test = torch.tensor(data.x_test, dtype=torch.float32), torch.tensor(data.y_test, dtype=torch.float32)
    x_rank = torch.tensor(relu.rank_points(config, data), dtype=torch.float32)
    grid = set(int(k) for k in evaluation_grid(config.iterations, config.grid_early, config.grid_spaced))
    start = time.perf_counter()
    for run in config.runs:
        net = _module(relu.make_student(config, seed))
        optimizer = torch.optim.SGD(net.parameters(), lr=run.schedule.lr)
        steps = run.schedule.values(config.iterations)
        order = relu_nets.sgd_indices(seed, len(x), config.iterations)
        for i in range(config.iterations + 1):
            if i in grid:
                with torch.no_grad():
                    train_loss = ((net(x)[:, 0] - y) ** 2).mean().item()
                    ((net(x_test)[:, 0] - y_test) ** 2).mean().item()
                if not np.isfinite(train_loss):  # diverged: stopped, as the paper's code does
                    break
                rows = []
                for point in x_rank:  # one backward pass per evaluation point
                    net.zero_grad()
                    net(point[None]).sum().backward()
                    rows.append(torch.cat([p.grad.flatten() for p in net.parameters()]).numpy())
                s = np.linalg.svd(np.stack(rows), compute_uv=False)
                int((s / s[0] > config.rank_tol).sum())
                with torch.no_grad():
                    h = x
                    for module in list(net)[:-1]:
                        h = module(h)
                        if isinstance(module, torch.nn.ReLU):
                            metrics.feature_sparsity(h.double(), config.corr_threshold)
            if i == config.iterations:
                break
            optimizer.param_groups[0]["lr"] = float(steps[i])
            k = int(order[i])
            loss = ((net(x[k:k + 1])[:, 0] - y[k:k + 1]) ** 2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--only", nargs="*", default=list(NAMES), choices=NAMES)
    parser.add_argument("--baseline", action="store_true",
                        help="also time the plain per-run procedure here, one seed (a few minutes)")
    args = parser.parse_args(argv)
    print(f"full scale, --seeds {args.seeds}, sharpness off (the paper's work), median of {args.repeats} "
          "(shared machine: timings are noisy)")
    print(f"{'experiment':18s} {'wall s':>7s} {'train s':>8s} {'metrics s':>9s} {'rows':>5s}")
    total = 0.0
    for name in args.only:
        r = bench(name, args.seeds, args.repeats)
        total += r["wall"]
        print(f"{name:18s} {r['wall']:7.2f} {r['train']:8.2f} {r['metrics']:9.2f} {r['rows']:5d}"
              f"   ({r['diverged']} diverged rows)")
    print(f"{'total':18s} {total:7.2f}")
    print("against the paper's code: benchmarks/bench_vs_paper.py")
    if args.baseline:
        print("\nplain per-run procedure timed now (one seed, diverging seeds not redrawn), against ours with --seeds 1:")
        base_total, ours_total = 0.0, 0.0
        for name in args.only:
            ours = bench(name, 1, 1)["wall"]
            with limited_threads():  # as fair as possible: single-threaded like ours
                base = baseline(name)
            base_total, ours_total = base_total + base, ours_total + ours
            print(f"{name:18s} plain {base:7.1f} s   ours {ours:6.1f} s   speed-up {base / ours:6.1f}x")
        print(f"{'total':18s} plain {base_total:7.1f} s   ours {ours_total:6.1f} s   speed-up {base_total / ours_total:6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
