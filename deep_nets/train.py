"""Train a deep net with the paper's step-size schedules, measuring feature sparsity as it trains.

    python deep_nets/train.py --dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs \
        --warmup_exp=1.05 --model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 \
        --momentum=0.0 --l2_reg=0.0 --no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg

Writes <out_dir>/<exp_name>/<run name>/: config.json, metrics.jsonl (one line per evaluation) and
checkpoint.pt (atomically, at each evaluation and on Ctrl-C/SIGTERM).  --resume continues a run; on
CPU the resumed run's metrics equal an uninterrupted run's.  Exit status 2 for bad arguments, missing
data or an unwritable out_dir; 128+signal number after an interrupt (checkpoint saved).
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python deep_nets/train.py` from anywhere

from largestep.metrics import feature_sparsity  # noqa: E402
from largestep.results import atomic_write, load_json, provenance, save_json, to_jsonable  # noqa: E402
from largestep.schedules import DEEP_SCHEDULES, ConfigError, lr_schedule  # noqa: E402
from largestep.streams import DEEP_OFFSETS, torch_stream  # noqa: E402

from deep_nets.data import DATASETS, DataError, TrainStream, as_inputs, load_dataset  # noqa: E402
from deep_nets.models import MODELS, build_model  # noqa: E402

N_BLOCKS = 5
# flags that may differ between an interrupted run and its resumption
RESUME_FREE = {"resume", "device", "threads", "eval_batch_size", "out_dir", "data_dir", "download", "skip_checksum", "stop_at_iteration"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deep_nets/train.py", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="cifar10", help=f"one of {', '.join(DATASETS)}")
    p.add_argument("--data_dir", default="data", help="where data sets lie (CIFAR python folders, mnist1d cache)")
    p.add_argument("--download", action="store_true",
                   help="fetch the official CIFAR archive (MD5-checked) into data_dir if missing; never implicit")
    p.add_argument("--skip_checksum", action="store_true",
                   help="accept CIFAR-format files whose MD5 differs from the official release (your own data)")
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
    p.add_argument("--eval_batch_size", type=int, default=0,
                   help="batch size of evaluation passes (0: 128 on CPU, where larger batches run slower, 1000 on GPU)")
    p.add_argument("--bn_refresh_examples", type=int, default=5000,
                   help="training images (unaugmented) that re-estimate the EMA model's BN statistics")
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
    if not (0 <= a.swa_tau < 1):
        raise ConfigError(f"--swa_tau must lie in [0, 1), got {a.swa_tau}")
    for name in ("eval_batch_size", "bn_refresh_examples"):
        if getattr(a, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(a, name)}")
    if "/" in a.exp_name or a.exp_name in ("", ".", ".."):
        raise ConfigError(f"--exp_name must be a plain directory name, got {a.exp_name!r}")
    lr_schedule(a.lr_schedule, a.epochs, a.lr_init, a.warmup_factor, a.warmup_exp)  # validates its arguments


def run_name(a, augment: bool) -> str:
    data = "npz-" + Path(a.dataset[4:]).stem if a.dataset.startswith("npz:") else a.dataset
    aug = "aug" if augment else "noaug"
    return (f"{data}_{a.model}_w{a.model_width}_{a.lr_schedule}_lr{a.lr_init:g}_wexp{a.warmup_exp:g}"
            f"_wf{a.warmup_factor:g}_mom{a.momentum:g}_l2{a.l2_reg:g}_{aug}_bs{a.batch_size}_ep{a.epochs}_seed{a.seed}")


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    return torch.device("cuda" if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()) else "cpu")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def refresh_bn(model, x, batch_size: int, n_examples: int) -> None:
    """Re-estimate BatchNorm statistics of `model` (the weight average) as plain means over batches of x[:n_examples]."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_examples == 0:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the refresh batches
    model.train()
    with torch.no_grad():
        for i in range(0, min(n_examples, len(x)), batch_size):
            model(as_inputs(x[i:min(i + batch_size, n_examples)]))
    model.eval()


def loss_and_error(model, x, y, batch_size: int, on_features=None) -> tuple[float, float]:
    """Mean cross-entropy and error rate of `model` on (x, y) in eval mode; on_features(blocks) sees each batch's blocks."""
    model.eval()
    total_loss = torch.zeros((), device=x.device, dtype=torch.float64)
    wrong = torch.zeros((), device=x.device, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(as_inputs(x[i:i + batch_size]), features=on_features is not None)
            logits = out[0] if on_features is not None else out
            target = y[i:i + batch_size]
            total_loss += F.cross_entropy(logits, target, reduction="sum").double()
            wrong += (logits.argmax(1) != target).sum()
            if on_features is not None:
                on_features(out[1])
    return total_loss.item() / len(x), wrong.item() / len(x)


def block_sparsity(model, x, y, neuron_idx, block_sizes, batch_size: int) -> dict:
    """Train loss/error and per-block feature sparsity (raw and de-duplicated) on the fixed examples x.

    Raw: fraction of positive entries over all neurons of the block.  De-duplicated (spec): the
    subsampled neurons' features (examples x neurons), near-duplicates at |corr| > 0.95 removed by the
    package's metric on the features' device, positive entries over kept / (examples x subsampled).
    """
    positive = [torch.zeros((), device=x.device, dtype=torch.int64) for _ in neuron_idx]
    sampled = [[] for _ in neuron_idx]

    def collect(blocks):
        for k, (feat, idx) in enumerate(zip(blocks, neuron_idx)):
            flat = feat.flatten(1)
            positive[k] += (flat > 0).sum()
            sampled[k].append(flat[:, idx])
    out = dict(zip(("train_loss", "train_err"), loss_and_error(model, x, y, batch_size, collect)))
    for k, (pos, feats) in enumerate(zip(positive, sampled), start=1):
        out[f"feature_sparsity_block{k}"] = feature_sparsity(torch.cat(feats), corr_threshold=0.95, normalize_rows=False)
        out[f"feature_sparsity_raw_block{k}"] = pos.item() / (len(x) * block_sizes[k - 1])
    return out


def choose_neurons(model, data, n_neurons: int, seed: int, device) -> tuple[list[int], list[torch.Tensor]]:
    """A fixed random subset of at most n_neurons neurons of each block (channel x position each)."""
    model.eval()
    with torch.no_grad():
        _, blocks = model(as_inputs(data.x_train[:1]).to(device), features=True)
    sizes = [b[0].numel() for b in blocks]
    if len(sizes) != N_BLOCKS:
        raise ValueError(f"model returned {len(sizes)} feature blocks, expected {N_BLOCKS}")
    g = torch_stream("sparsity_neurons", seed)
    return sizes, [torch.randperm(s, generator=g)[:n_neurons].sort().values.to(device) for s in sizes]


class Interrupt:
    """Turns SIGINT/SIGTERM into a flag the training loop checks after each step (then saves and exits)."""

    def __init__(self):
        self.signum = None
        self.previous = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[s] = signal.signal(s, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        self.signum = signum

    def __exit__(self, *exc):
        for s, handler in self.previous.items():
            signal.signal(s, handler)


class IntervalProgress:
    """Progress between two evaluations: a tqdm bar on a terminal; elsewhere (a log file, a pipe) one line
    every PROGRESS_EVERY_S seconds, so that a long evaluation interval is not silent."""

    def __init__(self, total: int, every: int):
        self.total, self.every, self.bar = total, every, None
        self.tty = sys.stdout.isatty()

    def start(self, iteration: int) -> None:
        self.close()
        self.first, self.since = iteration, time.perf_counter()
        self.next_eval = min(self.total, (iteration // self.every + 1) * self.every)
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.next_eval - iteration, leave=False, unit="it", dynamic_ncols=True,
                            desc=f"to the evaluation at iteration {self.next_eval:,}")
        self.last_line = self.since

    def step(self, iteration: int) -> None:
        if self.bar is not None:
            self.bar.update(1)
        elif time.perf_counter() - self.last_line >= PROGRESS_EVERY_S:
            self.last_line = now = time.perf_counter()
            rate = (iteration - self.first) / (now - self.since)
            print(f"  iteration {iteration:,} of {self.total:,}: {rate:.2f} it/s, next evaluation at "
                  f"{self.next_eval:,} in about {(self.next_eval - iteration) / rate:.0f} s", flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


PROGRESS_EVERY_S = 30.0  # without a terminal: seconds between progress lines within an evaluation interval


def versions(device) -> dict:
    return {**provenance(), "device": str(device),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
            "torch_threads": torch.get_num_threads()}


def prepare_run_dir(a, config: dict) -> tuple[Path, dict | None]:
    run_dir = Path(a.out_dir) / a.exp_name / config["run_name"]
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        probe = run_dir / ".write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"cannot write to out_dir {a.out_dir!r}: {err}") from err
    ckpt_path = run_dir / "checkpoint.pt"
    if (run_dir / "metrics.jsonl").exists() or ckpt_path.exists():
        if not a.resume:
            raise ConfigError(f"run directory {run_dir} already holds a run: pass --resume to continue it, "
                              "or choose another --exp_name / --out_dir")
        if (run_dir / "config.json").exists():
            old = load_json(run_dir / "config.json")["args"]
            changed = sorted(k for k in config["args"] if k not in RESUME_FREE and old.get(k) != config["args"][k])
            if changed:
                raise ConfigError(f"--resume with different settings than the run in {run_dir}: {', '.join(changed)}")
        if ckpt_path.exists():
            return run_dir, torch.load(ckpt_path, map_location="cpu", weights_only=True)
    return run_dir, None


def train(a) -> int:
    check_args(a)
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    device = pick_device(a.device)
    eval_batch = a.eval_batch_size or (1000 if device.type == "cuda" else 128)
    data = load_dataset(a.dataset, a.data_dir, download_missing=a.download, verify=not a.skip_checksum)
    if len(data.x_train) < a.batch_size:
        raise ConfigError(f"--batch_size {a.batch_size} exceeds the {len(data.x_train)} training examples")
    augment = data.is_image and not a.no_data_augm
    config = {"args": vars(a), "run_name": run_name(a, augment), "augmentation": augment, "versions": versions(device),
              "data": {"name": data.name, "train_examples": len(data.x_train), "test_examples": len(data.x_test),
                       "input_shape": list(data.input_shape), "num_classes": data.num_classes},
              "steps_per_epoch": len(data.x_train) // a.batch_size,
              "random_streams": {"data_order_and_augmentation": a.seed, "initialization": a.seed,
                                 **{k: v + a.seed for k, v in DEEP_OFFSETS.items()}},
              # the script by its place in the repository, not this machine's absolute path
              "command": shlex.join(["python", "deep_nets/train.py", *sys.argv[1:]])}
    config["iterations"] = a.epochs * config["steps_per_epoch"]
    run_dir, checkpoint = prepare_run_dir(a, config)
    if checkpoint is not None and checkpoint["iteration"] >= config["iterations"]:
        print(f"{run_dir}: already complete ({config['iterations']} iterations)")
        return 0
    if checkpoint is not None and bool(checkpoint.get("diverged", False)):
        print(f"{run_dir}: diverged at iteration {checkpoint['iteration']}; nothing to resume")
        return 1
    save_json(config, run_dir / "config.json")

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    data = data.to(device)
    torch.manual_seed(a.seed)
    model = build_model(a.model, a.model_width, data.num_classes, data.input_shape).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.SGD(model.parameters(), lr=a.lr_init, momentum=a.momentum, weight_decay=a.l2_reg)
    stream = TrainStream(data.x_train, data.y_train, a.batch_size, augment, seed=a.seed)
    spe, total = config["steps_per_epoch"], config["iterations"]
    schedule = lr_schedule(a.lr_schedule, a.epochs, a.lr_init, a.warmup_factor, a.warmup_exp)
    fixed = torch.randperm(len(data.x_train), generator=torch_stream("sparsity_examples", a.seed))
    fixed = fixed[:a.sparsity_examples].sort().values.to(device)
    x_fixed, y_fixed = data.x_train[fixed], data.y_train[fixed]
    block_sizes, neuron_idx = choose_neurons(model, data, a.sparsity_neurons, a.seed, device)

    iteration = 0
    interval = {"loss_sum": torch.zeros((), dtype=torch.float64, device=device), "steps": 0}
    metrics_path = run_dir / "metrics.jsonl"
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        ema.load_state_dict(checkpoint["ema"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        stream.load_state_dict(checkpoint["stream"])
        iteration = int(checkpoint["iteration"])
        interval = {"loss_sum": checkpoint["interval_loss_sum"].to(device), "steps": int(checkpoint["interval_steps"])}
        # lines a killed run wrote after its last checkpoint are dropped: they will be recomputed
        lines = metrics_path.read_text().splitlines() if metrics_path.exists() else []
        kept = [ln for ln in lines if ln.strip() and json.loads(ln)["iteration"] <= iteration]
        atomic_write(metrics_path, lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in kept)))
        print(f"resuming {run_dir} at iteration {iteration} of {total}")
    else:
        metrics_path.write_text("")

    def save_checkpoint(diverged: bool = False):
        state = {"model": model.state_dict(), "ema": ema.state_dict(), "optimizer": optimizer.state_dict(),
                 "stream": stream.state_dict(), "iteration": iteration, "diverged": diverged,
                 "interval_loss_sum": interval["loss_sum"].cpu(), "interval_steps": interval["steps"]}
        atomic_write(run_dir / "checkpoint.pt", lambda tmp: torch.save(state, tmp))

    params, ema_params = list(model.parameters()), list(ema.parameters())
    time_train, images = 0.0, 0
    progress = IntervalProgress(total, a.eval_iter_freq)

    def evaluate() -> bool:
        nonlocal time_train, images
        start = time.perf_counter()
        row = {"iteration": iteration, "epoch": iteration / spe, "lr": schedule(iteration / spe)}
        running = interval["loss_sum"].item() / interval["steps"] if interval["steps"] else None
        row["train_loss_running"] = running
        row.update(block_sparsity(model, x_fixed, y_fixed, neuron_idx, block_sizes, eval_batch))
        row["test_loss"], row["test_err"] = loss_and_error(model, data.x_test, data.y_test, eval_batch)
        refresh_bn(ema, x_fixed, eval_batch, a.bn_refresh_examples)
        row["test_loss_ema"], row["test_err_ema"] = loss_and_error(ema, data.x_test, data.y_test, eval_batch)
        _sync(device)
        diverged = not all(math.isfinite(v) for v in (row["train_loss"], row["test_loss"]) + ((running,) if running else ()))
        if diverged:  # the features of a diverged net are NaN or inf: their sparsity means nothing
            row.update({k: None for k in row if k.startswith("feature_sparsity")})
        row.update({"diverged": diverged, "time_train": time_train, "time_eval": time.perf_counter() - start,
                    "images_per_s": images / time_train if time_train > 0 else None})
        with open(metrics_path, "a") as f:
            f.write(json.dumps(to_jsonable(row), allow_nan=False) + "\n")
        progress.close()
        print(f"iteration {iteration:>6} epoch {row['epoch']:7.2f} lr {row['lr']:.4g} | train loss {row['train_loss']:.4f} "
              f"err {row['train_err']:.3f} | test loss {row['test_loss']:.4f} err {row['test_err']:.3f} | "
              f"EMA test err {row['test_err_ema']:.3f} | feature sparsity blocks 1-{N_BLOCKS} "
              + " ".join("-" if row[f"feature_sparsity_block{k}"] is None else
                         f"{row[f'feature_sparsity_block{k}']:.3f}" for k in range(1, N_BLOCKS + 1)) +
              f" | {row['images_per_s'] or 0:.0f} img/s, eval {row['time_eval']:.1f} s", flush=True)
        interval["loss_sum"].zero_()
        interval["steps"], time_train, images = 0, 0.0, 0
        return diverged

    if iteration == 0 and checkpoint is None:
        evaluate()
        save_checkpoint()
    model.train()
    progress.start(iteration)
    with Interrupt() as interrupt:
        start = time.perf_counter()
        while iteration < total:
            lr = schedule((iteration + 1) / spe)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = stream.next()
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, params, 1 - a.swa_tau)
            interval["loss_sum"] += loss.detach().double()
            interval["steps"] += 1
            iteration += 1
            images += a.batch_size
            progress.step(iteration)
            if iteration % a.eval_iter_freq == 0 or iteration == total:
                _sync(device)
                time_train += time.perf_counter() - start
                diverged = evaluate()
                save_checkpoint(diverged)
                model.train()
                if not diverged and iteration < total:
                    progress.start(iteration)
                start = time.perf_counter()
                if diverged:
                    print(f"diverged (non-finite loss) by iteration {iteration}: stopped; metrics kept in {run_dir}")
                    return 1
            if interrupt.signum is not None or iteration == a.stop_at_iteration:
                progress.close()
                save_checkpoint()
                why = f"signal {interrupt.signum}" if interrupt.signum is not None else "--stop_at_iteration"
                print(f"stopped at iteration {iteration} ({why}); checkpoint saved, continue with --resume")
                return 128 + interrupt.signum if interrupt.signum is not None else 0
    print(f"done: {run_dir}")
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return train(args)
    except (ConfigError, DataError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C before training started: nothing to save yet
        print("interrupted before training started; nothing saved", file=sys.stderr)
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
