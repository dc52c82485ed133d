"""deep_nets/train.py's command line: its flags (the paper's published commands run unchanged), the names they
accept and their checks.  No torch here: `--help`, the sweep's and the deep study's checks, and train.py's first
line come before torch's import (seconds)."""
from __future__ import annotations

import argparse
import math

from largestep.config import ConfigError
from largestep.results import is_plain_name
from largestep.schedules import DeepScheduleNames, lr_schedule

MODELS = ("resnet18_plain", "resnet18", "resnet34_plain", "resnet_tiny", "mlp")
GROUPED_MODELS = ("mlp",)  # those deep_nets.group trains several to a process (no BatchNorm)
DATASETS = ("cifar10", "cifar100", "mnist1d", "synthetic", "npz:PATH")
EVAL_BATCH = {"cpu": 128, "cuda": 1000}  # evaluation batch by device: on CPU larger batches run slower

# Well under a minute on one CPU core, its first line within a second: a small ResNet through every stage of a
# run (data, model, training that fits the generated set, evaluations with feature sparsity, checkpoints, the run
# directory).
SMOKE = ("python deep_nets/train.py --device=cpu --dataset=synthetic --model=resnet_tiny --model_width=8 --epochs=3 "
         "--batch_size=64 --lr_init=0.05 --momentum=0.9 --no_data_augm --eval_iter_freq=16 --sparsity_examples=256 "
         "--bn_refresh_examples=256 --out_dir=/tmp/smoke")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Each flag's default shown; the description and the examples kept as written."""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="deep_nets/train.py", formatter_class=HelpFormatter,
        description="Train a deep net with the paper's step-size schedules, measuring feature sparsity as it trains.\n"
                    "Writes <out_dir>/<exp_name>/<run name>/: config.json, metrics.jsonl, checkpoint.pt.",
        epilog="A smoke run of well under a minute on a CPU (no data to fetch; 1,024 generated CIFAR-shaped images):\n"
               f"  {SMOKE}\n"
               "The paper's large-step run on CIFAR-10 (a GPU; add --download the first time):\n"
               "  python deep_nets/train.py --dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs "
               "--warmup_exp=1.05 --model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 "
               "--momentum=0.0 --l2_reg=0.0 --no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg\n"
               "Exit status: 0 done, 1 diverged, 2 bad input (one line naming the flag or file), 3 an unexpected "
               "error, 128+N stopped by signal N (checkpoint saved: continue with --resume).")
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
    p.add_argument("--lr_schedule", default="constant", choices=DeepScheduleNames(),
                   help="step-size schedule (see largestep.schedules.lr_schedule); untilF_thenS: lr_init until "
                        "the fraction F of training (0.X), then the step S")
    p.add_argument("--warmup_exp", type=float, default=1.0,
                   help="piecewise_0Xepochs warmup: >1 geometric, <1 power, =1 linear towards warmup_factor")
    p.add_argument("--warmup_factor", type=float, default=1.0,
                   help="target factor of the linear warmup (warmup_exp=1)")
    p.add_argument("--model", default="resnet18_plain", choices=MODELS, help="architecture")
    p.add_argument("--model_width", type=int, default=64,
                   help="channels of the first layer (mlp: units per layer)")
    p.add_argument("--epochs", type=int, default=100, help="training epochs T")
    p.add_argument("--batch_size", type=int, default=256,
                   help="SGD batch size (the last partial batch is dropped)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    p.add_argument("--l2_reg", type=float, default=0.0, help="lambda of the 0.5*lambda*||theta||^2 loss term")
    p.add_argument("--no_data_augm", action="store_true",
                   help="no random crop / horizontal flip (augmentation applies to image data sets only)")
    p.add_argument("--eval_iter_freq", type=int, default=200, help="evaluate every this many iterations")
    p.add_argument("--exp_name", default="default", help="groups run directories: <out_dir>/<exp_name>/<run name>/")
    p.add_argument("--seed", type=int, default=0, help="training seed: initialization, data order, augmentation")
    p.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="auto: cuda when available")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (default 1; 0: torch's default, one per core). With other jobs on a "
                        "2-core machine, torch's default trained 5-18x slower than one thread; on an idle machine "
                        "a large model on CPU gains from 2 or more")
    p.add_argument("--swa_tau", type=float, default=0.999,
                   help="decay of the exponential moving average of the weights")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint (starts it if absent)")
    p.add_argument("--out_dir", default="runs", help="root of the run directories")
    p.add_argument("--sparsity_examples", type=int, default=10752,
                   help="fixed unaugmented training examples for train loss/error and feature sparsity")
    p.add_argument("--sparsity_neurons", type=int, default=1000,
                   help="neurons subsampled per block for de-duplication")
    p.add_argument("--corr_threshold", type=float, default=0.95,
                   help="feature sparsity: of two neurons whose features correlate above this (in absolute value), one is "
                        "dropped as a duplicate; in (0, 1]")
    p.add_argument("--eval_batch_size", type=int, default=0,
                   help=f"batch size of evaluation passes (0: {EVAL_BATCH['cpu']} on CPU, where larger "
                        f"batches run slower, {EVAL_BATCH['cuda']} on GPU)")
    p.add_argument("--bn_refresh_examples", type=int, default=5000,
                   help="training images (unaugmented) that re-estimate the EMA model's BN statistics")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"),
                   help="fp32 (as in the paper) or bf16 autocast (GPU speed; weights, optimizer and loss "
                        "sums stay fp32)")
    p.add_argument("--memory_format", default="auto", choices=("auto", "channels_last", "contiguous"),
                   help="layout of conv nets' weights and inputs; auto: channels_last on GPU, contiguous on CPU")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the training step's forward (falls back to eager, saying why, where it fails)")
    p.add_argument("--stop_at_iteration", type=int, default=None,
                   help="save a checkpoint and stop after this iteration, as an interrupt would (resume tests); it "
                        "must come after the iteration a resumed run continues from")
    return p


def float_flags(parser: argparse.ArgumentParser) -> list[str]:
    return [a.dest for a in parser._actions if a.type is float]


def check_args(a) -> None:
    """train.py's rules for its flags alone (those that need the data set are checked once it is loaded)."""
    for name in float_flags(build_parser()):  # NaN passes every comparison below unnoticed
        if not math.isfinite(getattr(a, name)):
            raise ConfigError(f"--{name} must be a finite number, got {getattr(a, name)}")
    for name in ("epochs", "batch_size", "eval_iter_freq", "model_width", "sparsity_examples", "sparsity_neurons"):
        if getattr(a, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(a, name)}")
    if not (0 <= a.momentum < 1):
        raise ConfigError(f"--momentum must lie in [0, 1), got {a.momentum}")
    if not a.l2_reg >= 0:
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
    if a.dataset not in DATASETS[:-1] and not a.dataset.startswith("npz:"):
        raise ConfigError(f"unknown dataset {a.dataset!r} (known: {', '.join(DATASETS)})")
    try:
        lr_schedule(a.lr_schedule, a.epochs, a.lr_init, a.warmup_factor, a.warmup_exp)
    except ConfigError as err:  # the schedule's own words, named as the flags the user typed
        raise ConfigError(f"--{err}" if str(err).split(" ")[0] in ("lr_init", "warmup_factor", "warmup_exp")
                          else str(err)) from None


def parse(argv: list[str]) -> argparse.Namespace:
    """train.py's arguments from `argv`, checked; a ConfigError (not SystemExit) for what the parser refuses."""
    parser = build_parser()

    def refuse(message):
        raise ConfigError(message)
    parser.error = refuse
    args = parser.parse_args(argv)
    check_args(args)
    return args
