"""The CPU-scale study behind plot_feature_sparsity.ipynb: `make deep-demo` (minutes on 2 cores).

The paper's protocol on MNIST-1D with a 5-hidden-layer ReLU MLP (width 256), no explicit regularization
(momentum 0, no weight decay, no augmentation), 100 epochs, batch 64: a small constant step that still fits
the training set, against a large step near the largest stable one kept for the first 10/30/50% of training
and then decayed (`piecewise_0Xepochs` with warmup_exp=1: the paper's linear branch, flat with
warmup_factor=1), over several seeds.  Each run is one train.py command; runs go two at a time, one
thread each.  Re-running reproduces the committed metrics exactly except the timing fields.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
SMALL_LR = 0.05  # fits the training set (0 training errors by epoch 30) -- see docs/readme_deep.md
LARGE_LR = 0.6   # the largest constant step of the sweep that trained 50 epochs stably for both seeds tried (docs/readme_deep.md)
COMMON = ["--dataset=mnist1d", "--model=mlp", "--model_width=256", "--epochs=100", "--batch_size=64",
          "--momentum=0.0", "--l2_reg=0.0", "--no_data_augm", "--eval_iter_freq=200", "--device=cpu", "--threads=1"]
SCHEDULES = [("constant", SMALL_LR)] + [(f"piecewise_0{f}epochs", LARGE_LR) for f in (1, 3, 5)]


def commands(out_dir: Path, data_dir: str, seeds) -> list[list[str]]:
    return [[sys.executable, str(HERE / "train.py"), *COMMON, f"--lr_schedule={name}", f"--lr_init={lr}",
             "--warmup_exp=1.0", "--warmup_factor=1.0", f"--seed={seed}", "--exp_name=mnist1d_demo",
             f"--out_dir={out_dir}", f"--data_dir={data_dir}"]
            for seed in seeds for name, lr in SCHEDULES]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out_dir", default=str(HERE / "runs"), help="runs go to OUT_DIR/mnist1d_demo/")
    p.add_argument("--data_dir", default="data", help="where the generated mnist1d set is cached")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--jobs", type=int, default=2, help="runs at a time")
    args = p.parse_args(argv)
    target = Path(args.out_dir) / "mnist1d_demo"
    if target.exists():
        shutil.rmtree(target)
    cmds = commands(Path(args.out_dir), args.data_dir, args.seeds)
    subprocess.run(cmds[0][:2] + ["--help"], check=True, capture_output=True)  # fail fast on a broken CLI
    from deep_nets.data import load_mnist1d  # generate the cached set once, before parallel runs race for it
    load_mnist1d(args.data_dir)
    start = time.perf_counter()

    def run(cmd):
        log = subprocess.run(cmd, capture_output=True, text=True)
        tag = " ".join(a for a in cmd if a.startswith(("--lr_schedule", "--seed")))
        print(f"[{time.perf_counter() - start:5.0f} s] {tag}: {log.stdout.strip().splitlines()[-1] if log.stdout else ''}",
              flush=True)
        return log.returncode, log.stderr
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(run, cmds))
    diverged = [c for c, (code, _) in zip(cmds, results) if code == 1]  # train.py: 1 = stopped on a non-finite loss
    failed = [(c, err) for c, (code, err) in zip(cmds, results) if code not in (0, 1)]
    for cmd, err in failed:
        print("FAILED:", " ".join(cmd), "\n", err, file=sys.stderr)
    print(f"{len(cmds) - len(failed)} of {len(cmds)} runs done ({len(diverged)} diverged) in {time.perf_counter() - start:.0f} s -> {target}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
