"""Training throughput of train.py's own step (deep_nets.loop.Training) and the cost of one full evaluation, on
synthetic CIFAR-shaped data: fp32, bf16, bf16 + channels_last, + torch.compile.  Not a test; run by
benchmarks/gpu_check.sh, which adds the GPU tests' outcome.

    python benchmarks/bench_gpu.py --out gpu_check.json            # resnet18_plain w64 b256, 50,000 images
    python benchmarks/bench_gpu.py --cpu-smoke --out smoke.json     # a tiny size on CPU (the script runs; figures mean little)
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from deep_nets.data import synthetic  # noqa: E402
from deep_nets.distributed import start  # noqa: E402
from deep_nets.flags import build_parser  # noqa: E402
from deep_nets.loop import Training, versions  # noqa: E402
from deep_nets.progress import Stopwatch  # noqa: E402
from deep_nets.runs import run_config  # noqa: E402

VARIANTS = {"fp32": ["--precision=fp32", "--memory_format=contiguous"],
            "bf16": ["--precision=bf16", "--memory_format=contiguous"],
            "bf16_channels_last": ["--precision=bf16", "--memory_format=channels_last"],
            "bf16_channels_last_compile": ["--precision=bf16", "--memory_format=channels_last", "--compile"]}
SIZES = {"gpu": {"model_width": 64, "batch_size": 256, "n_train": 50_000, "n_test": 10_000, "warmup": 30, "steps": 200,
                 "device": "cuda"},
         "cpu-smoke": {"model_width": 8, "batch_size": 32, "n_train": 1024, "n_test": 256, "warmup": 3, "steps": 10,
                       "device": "cpu"}}
PAPER = {"epochs": 100, "train_examples": 50_000, "eval_iter_freq": 200}


def training(size: dict, flags: list[str], data) -> Training:
    a = build_parser().parse_args(["--dataset=synthetic", "--model=resnet18_plain", f"--model_width={size['model_width']}",
                                   f"--batch_size={size['batch_size']}", f"--device={size['device']}",
                                   "--no_data_augm", "--threads=0", *flags])
    processes = start(a.device, a.batch_size, models_with_bn=True)
    return Training(a, run_config(a, data, processes, versions(processes.device), []), data, processes)


def images_per_s(t: Training, size: dict) -> float:
    for _ in range(size["warmup"]):  # cuDNN's algorithm search, compilation
        t.step()
    clock = Stopwatch(t.device)
    clock.start()
    for _ in range(size["steps"]):
        t.step()
    return size["steps"] * size["batch_size"] / clock.seconds()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cpu-smoke", action="store_true", help="a tiny size on CPU")
    p.add_argument("--out", required=True, help="JSON file of the figures")
    a = p.parse_args()
    size = SIZES["cpu-smoke" if a.cpu_smoke else "gpu"]
    if size["device"] == "cuda" and not torch.cuda.is_available():
        print("error: no CUDA device: run on a GPU machine, or pass --cpu-smoke", file=sys.stderr)
        return 2
    data = synthetic(n_train=size["n_train"], n_test=size["n_test"])
    figures = {"size": size, "torch": torch.__version__,
               "device": torch.cuda.get_device_name() if size["device"] == "cuda" else "cpu", "images_per_s": {}}
    for name, flags in VARIANTS.items():
        start_s = time.perf_counter()
        t = training(size, flags, data)
        figures["images_per_s"][name] = images_per_s(t, size)
        print(f"{name}: {figures['images_per_s'][name]:,.0f} images/s ({time.perf_counter() - start_s:.0f} s with "
              "set-up and warm-up)", flush=True)
    best = max(figures["images_per_s"], key=figures["images_per_s"].get)
    t.model.eval()
    clock = Stopwatch(t.device)
    clock.start()
    t.measure()  # one full evaluation: the fixed training examples' metrics and sparsity, test set, EMA's BN refresh
    evaluation_s = clock.seconds()
    steps = PAPER["epochs"] * (PAPER["train_examples"] // size["batch_size"])
    step_s = size["batch_size"] / figures["images_per_s"][best]
    n_evaluations = steps // PAPER["eval_iter_freq"] + 2
    figures.update({
        "fastest": best, "evaluation_s": evaluation_s,
        "evaluation_fraction_at_eval_iter_freq_200": evaluation_s / (PAPER["eval_iter_freq"] * step_s),
        "epoch_s": PAPER["train_examples"] // size["batch_size"] * step_s,
        "projected_100_epochs_s": steps * step_s + n_evaluations * evaluation_s,
        "note": "evaluation sizes as the paper's: 10,752 fixed training examples, the test set, 5,000 BN-refresh images"
                if not a.cpu_smoke else "cpu-smoke: tiny width, batch and data set; checks the script, not the speed"})
    print(f"one evaluation {evaluation_s:.2f} s ({figures['evaluation_fraction_at_eval_iter_freq_200']:.1%} of 200 "
          f"steps); projected 100 epochs: {figures['projected_100_epochs_s'] / 60:.1f} min ({best})")
    Path(a.out).write_text(json.dumps(figures, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
