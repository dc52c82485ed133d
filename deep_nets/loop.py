"""What train.py does once its flags are checked: load the data, build the net, hold the run directory, and train
to the end, evaluating and checkpointing on the run's evaluation grid (deep_nets/runs.py).  A run directory is one
seed's process (under torchrun: one process per GPU, rank 0 writing)."""
from __future__ import annotations

import contextlib
import copy
import glob
import math
import platform
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F

from largestep.config import ConfigError
from largestep.schedules import lr_schedule
from largestep.streams import torch_stream

from deep_nets.data import TrainStream, load_dataset
from deep_nets.distributed import Processes, start
from deep_nets.evaluation import block_sparsity, choose_neurons, loss_and_error, refresh_bn
from deep_nets.memory import check_run
from deep_nets.models import build_model
from deep_nets.progress import IntervalProgress, Interrupt, Stopwatch, describe
from deep_nets.run_dir import (RESUME_HINT, RunError, RunLock, cannot_write, make_dirs, prepare_run_dir,
                               publish_first_evaluation, resume, save_checkpoint, short_reason)
from deep_nets.runs import evaluation_grid, metrics_line, run_config, run_dir


def train(a, argv: list[str]) -> int:
    """Train the run of the checked flags `a` (parsed from `argv`); the exit status (0 done, 1 diverged, 128+N
    signal N)."""
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    processes = start(a.device, a.batch_size, models_with_bn=a.model != "mlp")
    try:
        data = load_dataset(a.dataset, a.data_dir, download_missing=a.download, verify=not a.skip_checksum)
        check_data_fits(a, data, processes.device)
        config = run_config(a, data, processes, versions(processes.device), argv)
        if a.stop_at_iteration is not None and a.stop_at_iteration > config["iterations"]:
            raise ConfigError(f"--stop_at_iteration {a.stop_at_iteration} is beyond the run's {config['iterations']} "
                              "iterations: pass a smaller one, or leave it out")
        if not processes.is_main:  # rank 0 holds the run directory; the others follow its decisions
            code = run(a, config, data, processes, None)
        else:
            code = hold_and_run(a, config, data, processes)
    except BaseException:
        processes.close(ordered=False)
        raise
    processes.close(ordered=True)
    return code


def check_data_fits(a, data, device) -> None:
    """train.py's rules that need the data set: a batch it can fill, and memory for the whole run."""
    if len(data.x_train) < a.batch_size:
        raise ConfigError(f"--batch_size {a.batch_size} exceeds the {len(data.x_train)} training examples")
    check_run(a, data, device)


def versions(device) -> dict:
    return {"device": str(device), "torch_threads": torch.get_num_threads(),
            "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"}


def hold_and_run(a, config: dict, data, processes: Processes) -> int:
    with holding(a) as lock:
        return run(a, config, data, processes, lock)


@contextlib.contextmanager
def holding(a):
    """The run directory of `a` locked for this process (its stale staging and temporary files removed); on exit
    the lock is released and the directories this call created for a run that never started are removed."""
    directory = run_dir(vars(a))
    created = make_dirs(directory.parent, f"out_dir {a.out_dir!r}")
    lock = RunLock(directory)
    try:
        try:
            lock.acquire()
        except OSError as err:
            again = "run again with --resume" if a.resume else "run again"
            raise RunError(f"cannot write to out_dir {a.out_dir!r} ({err.filename or lock.path}: {err.strerror}): "
                           f"free some space or fix permissions, then {again}") from None
        for stale in directory.parent.glob(glob.escape(f".{directory.name}.new-") + "*"):  # left by a killed start
            shutil.rmtree(stale, ignore_errors=True)
        for name in ("checkpoint.pt", "metrics.jsonl", "config.json"):  # a write cut short by SIGKILL
            for stale in directory.glob(f".{name}.*"):
                stale.unlink(missing_ok=True)
        yield lock
    finally:
        lock.release()
        for d in created:  # a run that never started leaves no directory behind
            try:
                d.rmdir()
            except OSError:
                break


class Training:
    """One run between set-up and its end: the net, its weight average, the optimizer, the data order, the fixed
    evaluation examples and neurons, and the counters of the current evaluation interval."""

    def __init__(self, a, config: dict, data, processes: Processes, lock: RunLock | None = None):
        device = processes.device
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.a, self.device, self.data, self.processes, self.lock = a, device, data.to(device), processes, lock
        self.eval_batch = config["evaluation"]["batch_size"]
        self.steps_per_epoch, self.total = config["steps_per_epoch"], config["iterations"]
        self.grid = evaluation_grid(self.total, a.eval_iter_freq)
        self.evaluated_at = frozenset(self.grid.tolist())
        torch.manual_seed(a.seed)
        self.model = build_model(a.model, a.model_width, data.num_classes, data.input_shape).to(device)
        self.layout = torch.channels_last if config["memory_format"] == "channels_last" else torch.contiguous_format
        self.model.to(memory_format=self.layout)
        self.ema = copy.deepcopy(self.model).requires_grad_(False)
        self.trainer = processes.wrap(self.model)  # shares its parameters with self.model
        self.forward = torch.compile(self.trainer) if a.compile else self.trainer
        self.compile_tried = not a.compile
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=a.lr_init, momentum=a.momentum,
                                         weight_decay=a.l2_reg)
        self.stream = TrainStream(self.data.x_train, self.data.y_train, a.batch_size, config["augmentation"], seed=a.seed,
                                  part=processes.shard(a.batch_size))
        self.schedule = lr_schedule(a.lr_schedule, a.epochs, a.lr_init, a.warmup_factor, a.warmup_exp)
        fixed = torch.randperm(len(self.data.x_train), generator=torch_stream("sparsity_examples", a.seed))
        fixed = fixed[:a.sparsity_examples].sort().values.to(device)
        self.x_fixed, self.y_fixed = self.data.x_train[fixed], self.data.y_train[fixed]
        self.block_sizes, self.neuron_idx = choose_neurons(self.model, self.data, a.sparsity_neurons, a.seed, device)
        self.params, self.ema_params = list(self.model.parameters()), list(self.ema.parameters())
        self.iteration = 0
        self.loss_sum, self.interval_steps = torch.zeros((), dtype=torch.float64, device=device), 0
        self.time_train, self.images = 0.0, 0
        self.stopwatch = Stopwatch(device)
        self.write_dir = None  # where checkpoint.pt and metrics.jsonl go: the run directory or its staging twin

    def describe(self) -> str:
        """What this run holds and measures, for the log before the first evaluation (minutes on a CPU)."""
        params = sum(p.numel() for p in self.params)
        return (f"{len(self.data.x_train):,} training and {len(self.data.x_test):,} test examples; {self.a.model} of "
                f"{params:,} parameters on {self.device}; {self.total:,} iterations, evaluating at {len(self.grid)} "
                f"of them, each on {len(self.x_fixed):,} fixed training examples (loss, error, feature sparsity of 5 "
                f"blocks) and the test set (the net, then its weight average)")

    def restore(self, checkpoint: dict) -> None:
        """Continue from `checkpoint` (checked by run_dir.check_checkpoint); a state-dict error when it belongs to
        another model."""
        self.model.load_state_dict(checkpoint["model"])
        self.ema.load_state_dict(checkpoint["ema"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.stream.load_state_dict(checkpoint["stream"])
        self.iteration = int(checkpoint["iteration"])
        self.loss_sum = checkpoint["interval_loss_sum"].to(self.device)
        self.interval_steps = int(checkpoint["interval_steps"])

    def step(self) -> None:
        """One SGD step at the schedule's step size for the iteration it completes, then the weight average."""
        self.set_step_size()
        x, y = self.stream.next()
        x = x.contiguous(memory_format=self.layout) if x.ndim == 4 else x
        self.optimizer.zero_grad(set_to_none=True)
        self.finish_step(self.backward(x, y))

    def set_step_size(self) -> None:
        """The schedule's step size for the iteration this step completes."""
        lr = self.schedule((self.iteration + 1) / self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def finish_step(self, loss: torch.Tensor) -> None:
        """With the batch's gradients in place: the optimizer's step, the weight average, the counters."""
        self.optimizer.step()
        with torch.no_grad():
            torch._foreach_lerp_(self.ema_params, self.params, 1 - self.a.swa_tau)
        self.loss_sum += loss.detach().double()
        self.interval_steps += 1
        self.iteration += 1
        self.images += self.a.batch_size

    def autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.a.precision == "bf16")

    def backward(self, x, y) -> torch.Tensor:
        """The batch's loss, its gradients accumulated.  The first compiled step compiles; where that fails (no
        compiler, an unsupported platform), one line says why and the step is redone eagerly from the same batch."""
        if not self.compile_tried:
            self.compile_tried = True
            try:
                return self.backward(x, y)
            except Exception as err:
                print(f"--compile: torch.compile failed ({short_reason(err)}); training without it", flush=True)
                self.forward = self.trainer
                self.optimizer.zero_grad(set_to_none=True)
        with self.autocast():
            loss = F.cross_entropy(self.forward(x), y)
        loss.backward()
        return loss

    def measure(self) -> dict:
        """The metrics row of the current iteration (the net is left in eval mode)."""
        a, data, batch = self.a, self.data, self.eval_batch
        clock = Stopwatch(self.device)
        clock.start()
        epoch = self.iteration / self.steps_per_epoch
        running = self.loss_sum.item() / self.interval_steps if self.interval_steps else None
        row = {"iteration": self.iteration, "epoch": epoch, "lr": self.schedule(epoch), "train_loss_running": running}
        with self.autocast():
            row.update(block_sparsity(self.model, self.x_fixed, self.y_fixed, self.neuron_idx, self.block_sizes,
                                      batch, corr_threshold=a.corr_threshold))
            row["test_loss"], row["test_err"] = loss_and_error(self.model, data.x_test, data.y_test, batch)
            refresh_bn(self.ema, self.x_fixed, batch, a.bn_refresh_examples)
            row["test_loss_ema"], row["test_err_ema"] = loss_and_error(self.ema, data.x_test, data.y_test, batch)
        diverged = not all(math.isfinite(v) for v in (row["train_loss"], row["test_loss"]) + ((running,) if running else ()))
        if diverged:  # the features of a diverged net are NaN or inf: their sparsity means nothing
            row.update({k: None for k in row if k.startswith("feature_sparsity")})
        row.update({"diverged": diverged, "time_train": self.time_train, "time_eval": clock.seconds(),
                    "images_per_s": self.images / self.time_train if self.time_train > 0 else None})
        return row

    def evaluate(self) -> bool:
        """Measure, append the row to metrics.jsonl, print it and start a new interval; True when diverged.
        Every process calls it; rank 0 measures and writes, and says whether the run diverged."""
        self.processes.mean(self.loss_sum)
        diverged = False
        if self.processes.is_main:
            row = self.measure()
            path = self.write_dir / "metrics.jsonl"
            if self.lock is not None:
                self.lock.check()
            try:
                with open(path, "a") as f:  # one write: a crash tears at most this last line
                    f.write(metrics_line(row))
            except OSError as err:
                err.filename = err.filename or str(path)
                raise
            print(describe(row), flush=True)
            diverged = row["diverged"]
        self.loss_sum.zero_()
        self.interval_steps, self.time_train, self.images = 0, 0.0, 0
        return self.processes.share(diverged)

    def evaluate_and_save(self, directory: Path) -> bool:
        """At a point of the evaluation grid: the metrics, then a checkpoint; True when the loss is no longer
        finite.  The training clock stops for it and the model returns to training mode."""
        self.time_train += self.stopwatch.seconds()
        try:
            diverged = self.evaluate()
            self.save_checkpoint(diverged)
        except OSError as err:
            raise cannot_write(directory, err, RESUME_HINT) from None
        self.model.train()
        return diverged

    def save_checkpoint(self, diverged: bool = False) -> None:
        if not self.processes.is_main:
            return
        state = {"model": self.model.state_dict(), "ema": self.ema.state_dict(),
                 "optimizer": self.optimizer.state_dict(), "stream": self.stream.state_dict(),
                 "iteration": self.iteration, "diverged": diverged,
                 "interval_loss_sum": self.loss_sum.cpu(), "interval_steps": self.interval_steps}
        if self.lock is not None:
            self.lock.check()
        save_checkpoint(state, self.write_dir / "checkpoint.pt")


def run(a, config: dict, data, processes: Processes, lock: RunLock | None) -> int:
    """Start or resume the run of `config` (its directory locked by the caller on rank 0) and train it to the end;
    the other ranks get rank 0's checkpoint."""
    opened = open_run(a, config, data, processes, lock)
    if isinstance(opened, int):
        return opened
    training, checkpoint = opened
    with Interrupt() as interrupt:  # a signal from here on stops training after its next step, with a checkpoint
        begin(training, checkpoint, config)
        return train_to_end(training, run_dir(vars(a)), interrupt)


def open_run(a, config: dict, data, processes: Processes, lock: RunLock | None):
    """(the run's Training, the checkpoint it resumes from or None); or the exit status of a run that has nothing
    left to train (0 complete, 1 diverged)."""
    directory = run_dir(vars(a))
    checkpoint = prepare_run_dir(a, config, directory) if processes.is_main else None
    checkpoint = processes.share(checkpoint)
    say = print if processes.is_main else (lambda *_, **__: None)
    if checkpoint is not None and checkpoint["iteration"] >= config["iterations"]:
        say(f"{directory}: already complete ({config['iterations']} iterations)")
        return 0
    if checkpoint is not None and bool(checkpoint.get("diverged", False)):
        say(f"{directory}: diverged at iteration {checkpoint['iteration']}; nothing to resume")
        return 1
    training = Training(a, config, data, processes, lock)
    if checkpoint is None:
        say(training.describe(), flush=True)
    return training, checkpoint


def begin(training: "Training", checkpoint: dict | None, config: dict) -> None:
    """Restore the checkpoint, or publish the run directory with its first evaluation."""
    directory = run_dir(vars(training.a))
    if checkpoint is not None:
        resume(training, checkpoint, directory, config, training.lock)
    else:
        publish_first_evaluation(training, directory, config)


def train_to_end(training: Training, directory: Path, interrupt: Interrupt) -> int:
    """Train to the last iteration, evaluating and checkpointing at every point of the evaluation grid; an
    interrupt (or --stop_at_iteration) saves a checkpoint and stops.  The exit status: 0 done, 1 diverged,
    128+signal."""
    a, processes = training.a, training.processes
    training.model.train()
    progress = IntervalProgress(training.grid, show=processes.is_main)
    progress.start(training.iteration)
    training.stopwatch.start()
    while training.iteration < training.total:
        training.step()
        iteration = training.iteration
        progress.step(iteration)
        if iteration in training.evaluated_at:
            progress.close()
            diverged = training.evaluate_and_save(directory)
            if diverged:
                if processes.is_main:
                    print(f"diverged (non-finite loss) by iteration {iteration}: stopped; metrics kept in {directory}")
                return 1
            if iteration < training.total:
                progress.start(iteration)
            training.stopwatch.start()
        signum = processes.stop_requested(interrupt.signum)
        if signum is not None or iteration == a.stop_at_iteration:
            return stop(training, directory, signum, progress)
    if processes.is_main:
        print(f"done: {directory}", flush=True)
    return 0


def stop(training: Training, directory: Path, signum, progress: IntervalProgress) -> int:
    """Save a checkpoint after an interrupt or at --stop_at_iteration; the exit status says which."""
    progress.close()
    training.processes.mean(training.loss_sum)
    try:
        training.save_checkpoint()
    except OSError as err:
        raise cannot_write(directory, err, RESUME_HINT) from None
    why = f"signal {signum}" if signum is not None else "--stop_at_iteration"
    if training.processes.is_main:
        print(f"stopped at iteration {training.iteration} ({why}); checkpoint saved, continue with --resume", flush=True)
    return 128 + signum if signum is not None else 0
