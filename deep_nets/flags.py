"""deep_nets/train.py's flags: the parser (the paper's published commands run unchanged), their checks, the run name
and what config.json records of them."""
from __future__ import annotations

import argparse
import math
import platform
import shlex
import sys
from pathlib import Path

import torch

from largestep.config import ConfigError
from largestep.results import is_plain_name, provenance
from largestep.schedules import DEEP_SCHEDULES, lr_schedule
from largestep.streams import DEEP_OFFSETS

from deep_nets.data import DATASETS
from deep_nets.models import MODELS

EVAL_BATCH = {"cpu": 128, "cuda": 1000}  # evaluation batch by device: on CPU larger batches run slower
# flags that may differ between an interrupted run and its resumption
RESUME_FREE = {"resume", "device", "threads", "eval_batch_size", "out_dir", "data_dir", "download", "skip_checksum",
               "stop_at_iteration", "compile", "memory_format"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deep_nets/train.py", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="cifar10", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--data_dir", default="data", help="where data sets lie (CIFAR python folders, mnist1d cache)")
    p.add_argument("--download", action="store_true",
                   help="fetch the official CIFAR archive (MD5-checked) into data_dir if missing; never implicit")
    p.add_argument("--skip_checksum", action="store_true",
                   help="accept CIFAR-format files whose MD5 differs from the official release (your own data). It "
                        "skips only the comparison with the official MD5s: the files are still read by an unpickler "
                        "that admits numpy arrays, lists, dicts, bytes and numbers alone, and their shapes and "
                        "labels are still checked")
    p.add_argument("--lr_init", type=float, default=0.1, help="initial step size eta")
    p.add_argument("--lr_schedule", default="constant", choices=DEEP_SCHEDULES, help="step-size schedule (see largestep.schedules.lr_schedule)")
    p.add_argument("--warmup_exp", type=float, default=1.0,
                   help="piecewise_0Xepochs warmup: >1 geometric, <1 power, =1 linear towards warmup_factor")
    p.add_argument("--warmup_factor", type=float, default=1.0, help="target factor of the linear warmup (warmup_exp=1)")
    p.add_argument("--model", default="resnet18_plain", choices=MODELS, help="architecture")
    p.add_argument("--model_width", type=int, default=64, help="channels of the first layer (mlp: units per layer)")
    p.add_argument("--epochs", type=int, default=100, help="training epochs T")
    p.add_argument("--batch_size", type=int, default=256, help="SGD batch size (the last partial batch is dropped)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    p.add_argument("--l2_reg", type=float, default=0.0, help="lambda of the 0.5*lambda*||theta||^2 loss term")
    p.add_argument("--no_data_augm", action="store_true",
                   help="no random crop / horizontal flip (augmentation applies to image data sets only)")
    p.add_argument("--eval_iter_freq", type=int, default=200, help="evaluate every this many iterations")
    p.add_argument("--exp_name", default="default", help="groups runs: <out_dir>/<exp_name>/<run name>/")
    p.add_argument("--seed", type=int, default=0, help="training seed: initialization, data order, augmentation")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="auto: cuda when available")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1; 0: torch's default, one per core). With other jobs on a "
                        "2-core machine, torch's default trained 5-18x slower than one thread; on an idle machine "
                        "a large model on CPU gains from 2 or more")
    p.add_argument("--swa_tau", type=float, default=0.999, help="decay of the exponential moving average of the weights")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint (starts it if absent)")
    p.add_argument("--out_dir", default="runs", help="root of the run directories")
    p.add_argument("--sparsity_examples", type=int, default=10752,
                   help="fixed unaugmented training examples for train loss/error and feature sparsity")
    p.add_argument("--sparsity_neurons", type=int, default=1000, help="neurons subsampled per block for de-duplication")
    p.add_argument("--corr_threshold", type=float, default=0.95,
                   help="feature sparsity: of two neurons whose features correlate above this (in absolute value), one is "
                        "dropped as a duplicate; in (0, 1]")
    p.add_argument("--eval_batch_size", type=int, default=0,
                   help=f"batch size of evaluation passes (0: {EVAL_BATCH['cpu']} on CPU, where larger batches run slower, "
                        f"{EVAL_BATCH['cuda']} on GPU)")
    p.add_argument("--bn_refresh_examples", type=int, default=5000,
                   help="training images (unaugmented) that re-estimate the EMA model's BN statistics")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="fp32 (as in the paper) or bf16 autocast (GPU speed; weights, optimizer and loss sums stay fp32)")
    p.add_argument("--memory_format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="layout of conv nets' weights and inputs; auto: channels_last on GPU, contiguous on CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step's forward (falls back to eager, saying why, where it fails)")
    p.add_argument("--stop_at_iteration", type=int, default=None,
                   help="save a checkpoint and stop after this iteration, as an interrupt would (resume tests)")
    return p


def check_args(a) -> None:
    for name in ("epochs", "batch_size", "eval_iter_freq", "model_width", "sparsity_examples", "sparsity_neurons"):
        if getattr(a, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if not (0 <= a.momentum < 1):
        raise ConfigError(f"--momentum must lie in [0, 1), got {a.momentum}")
    if not (a.l2_reg >= 0 and math.isfinite(a.l2_reg)):
        raise ConfigError(f"--l2_reg must be a finite number >= 0, got {a.l2_reg}")
    if not (0 < a.corr_threshold <= 1):
        raise ConfigError(f"--corr_threshold must lie in (0, 1], got {a.corr_threshold}")
    if not (0 <= a.swa_tau < 1):
        raise ConfigError(f"--swa_tau must lie in [0, 1), got {a.swa_tau}")
    for name in ("eval_batch_size", "bn_refresh_examples"):
        if getattr(a, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(a, name)}")
    if not is_plain_name(a.exp_name):
        raise ConfigError(f"--exp_name must be a plain directory name (letters, digits, '_', '-', '.'; not starting "
                          f"with '.'), got {a.exp_name!r}")
    if not a.out_dir.strip():
        raise ConfigError("--out_dir must name a directory, got an empty string (use --out_dir . for the current one)")
    if a.threads < 0:
        raise ConfigError(f"--threads must be >= 0 (0: torch's default), got {a.threads}")
    if a.stop_at_iteration is not None and a.stop_at_iteration < 1:
        raise ConfigError(f"--stop_at_iteration must be >= 1, got {a.stop_at_iteration}")
    if not 0 <= a.seed < 2**31:
        raise ConfigError(f"--seed must lie in [0, 2**31), got {a.seed}")
    lr_schedule(a.lr_schedule, a.epochs, a.lr_init, a.warmup_factor, a.warmup_exp)  # validates its arguments


def run_name(a, augment: bool) -> str:
    data = "npz-" + Path(a.dataset[4:]).stem if a.dataset.startswith("npz:") else a.dataset
    aug = "aug" if augment else "noaug"
    return (f"{data}_{a.model}_w{a.model_width}_{a.lr_schedule}_lr{a.lr_init:g}_wexp{a.warmup_exp:g}"
            f"_wf{a.warmup_factor:g}_mom{a.momentum:g}_l2{a.l2_reg:g}_{aug}_bs{a.batch_size}_ep{a.epochs}_seed{a.seed}"
            + ("" if a.precision == "fp32" else f"_{a.precision}"))


def run_config(a, data, processes) -> dict:
    """What config.json records: the flags, the data, the evaluation sizes and random streams in effect, versions."""
    augment, device = data.is_image and not a.no_data_augm, processes.device
    sparsity_examples = min(a.sparsity_examples, len(data.x_train))
    config = {"args": vars(a), "run_name": run_name(a, augment), "augmentation": augment, "versions": versions(device),
              "data": {"name": data.name, "train_examples": len(data.x_train), "test_examples": len(data.x_test),
                       "input_shape": list(data.input_shape), "num_classes": data.num_classes},
              "steps_per_epoch": len(data.x_train) // a.batch_size, "processes": processes.world, "backend": processes.backend,
              "memory_format": memory_format(a, device),
              "evaluation": {"corr_threshold": a.corr_threshold, "sparsity_examples": sparsity_examples,
                             "sparsity_neurons_per_block": a.sparsity_neurons,
                             "bn_refresh_examples": min(a.bn_refresh_examples, sparsity_examples),
                             "test_examples": len(data.x_test),
                             "batch_size": a.eval_batch_size or EVAL_BATCH[device.type]},
              "random_streams": {"data_order_and_augmentation": a.seed, "initialization": a.seed,
                                 **{k: v + a.seed for k, v in DEEP_OFFSETS.items()}},
              "random_stream_offsets": dict(DEEP_OFFSETS),
              # the script by its place in the repository, not this machine's absolute path
              "command": shlex.join(["python", "deep_nets/train.py", *sys.argv[1:]])}
    if processes.backend is not None:
        config["command"] = f"torchrun --nproc_per_node={processes.world} " + config["command"][len("python "):]
    config["iterations"] = a.epochs * config["steps_per_epoch"]
    return config


def memory_format(a, device) -> str:
    if a.model == "mlp":
        return "contiguous"
    if a.memory_format == "auto":
        return "channels_last" if device.type == "cuda" else "contiguous"
    return a.memory_format


def versions(device) -> dict:
    return {**provenance(), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch_threads": torch.get_num_threads()}
