"""Several train.py runs of one small model trained in one process, each step of all of them one grouped program.

A study of many short runs of a small model (the phase map of the MLP on MNIST-1D: 210 runs) pays, with one
process per run, each process's start (torch's import, the data set, set-up: a quarter of such a run's CPU time
here).  Here the runs of a group share the process and the data set, and each step stacks their parameters and
computes every run's loss and gradient with batched matrix products (one per layer for the whole group).  On this
CPU that does not make a step cheaper: the MLP's step is arithmetic-bound (about 3 ms of one core, alone or
grouped; docs/deep_nets.md).  Everything else is each run's own, as under train.py: its flags
(deep_nets.flags.parse), run directory, lock, config.json, metrics.jsonl, checkpoints, resume, data order,
schedule, optimizer, weight average and evaluations (deep_nets.loop.Training), so that a grouped run's directory
is read, reused and resumed like any other.  Its numbers equal the run trained alone up to float32 rounding
(the grouped products add in another order): tests/test_deep_group.py states the tolerance.

Only models without BatchNorm group (the MLP): a BatchNorm run's step also depends on its running statistics.
The runs of a group must share what the stacked step and the data set need: data set, model, width, batch size.
"""
from __future__ import annotations

import contextlib
import sys
import time
import traceback

import torch
import torch.nn.functional as F

from largestep.config import ConfigError

from deep_nets.data import load_dataset
from deep_nets.distributed import start
from deep_nets.flags import GROUPED_MODELS, parse
from deep_nets.loop import Training, begin, check_data_fits, holding, open_run, stop, versions
from deep_nets.progress import Interrupt
from deep_nets.runs import run_config, run_dir

SHARED = ("dataset", "data_dir", "model", "model_width", "batch_size", "device", "threads", "precision", "compile")


def main(argvs: list[list[str]]) -> int:
    """train_group as a process (deep_nets.launch): 0 when every run finished or diverged (each run directory says
    which), 2 with one line for what train.py would refuse, 3 for an unexpected error, 128+N after signal N."""
    from deep_nets.data import DataError
    from deep_nets.run_dir import RunError
    from largestep.results import sigterm_as_interrupt

    try:
        with sigterm_as_interrupt():
            statuses = train_group(argvs)
    except (ConfigError, DataError, RunError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted before training started; nothing saved", file=sys.stderr)
        return 130
    except Exception as err:  # a fault of this program or of torch: exit 1 would read as "diverged"
        traceback.print_exc()
        print(f"error: a group of train.py runs stopped on an unexpected {type(err).__name__} (traceback above): "
              f"{err}".splitlines()[0], file=sys.stderr)
        return 3
    # the CPU seconds of the group's process: on a shared machine the number to compare with one process per run
    print(f"group of {len(argvs)} runs: {time.process_time():.1f} s of CPU in this process", flush=True)
    stopped = [s for s in statuses if s not in (0, 1)]
    return stopped[0] if stopped else 0


def check_group(args: list) -> None:
    """ConfigError unless the runs `args` (parsed flags) can train as one group."""
    first = args[0]
    if first.model not in GROUPED_MODELS:
        raise ConfigError(f"only {', '.join(GROUPED_MODELS)} runs train in groups (no BatchNorm), not {first.model}")
    if first.device == "cuda" or first.compile or first.precision != "fp32":
        raise ConfigError("grouped runs train on the CPU in float32, without --compile")
    for a in args[1:]:
        differ = [name for name in SHARED if getattr(a, name) != getattr(first, name)]
        if differ:
            raise ConfigError(f"the runs of a group must share {', '.join(differ)}: {run_dir(vars(first))} and "
                              f"{run_dir(vars(a))} do not")
    names = [run_dir(vars(a)) for a in args]
    if len(set(names)) < len(names):
        raise ConfigError("a group names the same run directory twice")


def train_group(argvs: list[list[str]]) -> list[int]:
    """Train the runs of train.py's arguments `argvs` in this process, as one group; each run's exit status as
    train.py's (0 done, 1 diverged; all 128+N after signal N, each with its checkpoint saved)."""
    args = [parse(argv) for argv in argvs]
    check_group(args)
    if args[0].threads > 0:
        torch.set_num_threads(args[0].threads)
    processes = start("cpu", args[0].batch_size, models_with_bn=False)
    if processes.world > 1:
        raise ConfigError("grouped runs train in one process, not under torchrun")
    data = load_dataset(args[0].dataset, args[0].data_dir)
    check_data_fits(args[0], data, processes.device)
    statuses: list[int | None] = [None] * len(args)
    with contextlib.ExitStack() as held:
        members = []
        for k, (a, argv) in enumerate(zip(args, argvs)):
            config = run_config(a, data, processes, versions(processes.device), argv)
            lock = held.enter_context(holding(a))
            opened = open_run(a, config, data, processes, lock)
            if isinstance(opened, int):
                statuses[k] = opened
            else:
                members.append((k, opened[0], opened[1], config))
        with Interrupt() as interrupt:
            for _, training, checkpoint, config in members:
                begin(training, checkpoint, config)
            live = [(k, training) for k, training, _, _ in members]
            for k, status in train_together(live, interrupt).items():
                statuses[k] = status
    return statuses


def train_together(live: list[tuple[int, Training]], interrupt: Interrupt) -> dict[int, int]:
    """train_to_end for a group: step every live run at once, evaluate and checkpoint each on its own grid; a run
    leaves the group when it ends or diverges.  Its time between evaluations (time_train) is the group's."""
    statuses = {}
    for k, training in live:
        if training.iteration >= training.total:
            statuses[k] = 0
    live = [(k, t) for k, t in live if k not in statuses]
    directories = {k: run_dir(vars(training.a)) for k, training in live}  # once, not at every step
    for _, training in live:
        training.model.train()
        training.stopwatch.start()
    while live:
        step_together([t for _, t in live])
        still = []
        for k, training in live:
            directory = directories[k]
            if training.iteration in training.evaluated_at:
                diverged = training.evaluate_and_save(directory)
                if diverged:
                    print(f"diverged (non-finite loss) by iteration {training.iteration}: stopped; metrics kept in "
                          f"{directory}", flush=True)
                    statuses[k] = 1
                    continue
                training.stopwatch.start()
            if training.iteration >= training.total:
                print(f"done: {directory}", flush=True)
                statuses[k] = 0
            elif interrupt.signum is not None or training.iteration == training.a.stop_at_iteration:
                statuses[k] = stop(training, directory, interrupt.signum, _NoProgress())
            else:
                still.append((k, training))
        live = still
    return statuses


class _NoProgress:
    def close(self) -> None:
        pass


def step_together(trainings: list[Training]) -> None:
    """One SGD step of every run (Training.step for a group): each run's batch and step size from its own stream
    and schedule, the losses and gradients of all runs from one stacked forward and backward pass."""
    xs, ys = [], []
    for training in trainings:
        training.set_step_size()
        x, y = training.stream.next()
        xs.append(x)
        ys.append(y)
    x, y = torch.stack(xs).flatten(2), torch.stack(ys)
    with torch.no_grad():
        stacked = [torch.stack(ps).requires_grad_() for ps in zip(*(t.params for t in trainings))]
    losses = stacked_losses(stacked, x, y)
    grads = torch.autograd.grad(losses.sum(), stacked)
    for r, training in enumerate(trainings):
        for p, g in zip(training.params, grads):
            p.grad = g[r]
        training.finish_step(losses[r])


def stacked_losses(stacked: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each run's mean cross-entropy on its batch, (R,): the MLP (deep_nets.models.MLP, parameters in its order:
    weight, bias of each hidden layer, then of the output layer) with run r's parameters stacked[.][r] on x[r]."""
    out = x
    layers = len(stacked) // 2
    for i in range(layers):
        weight, bias = stacked[2 * i], stacked[2 * i + 1]
        out = torch.baddbmm(bias.unsqueeze(1), out, weight.transpose(1, 2))
        if i < layers - 1:
            out = F.relu(out)
    runs, batch = y.shape
    return F.cross_entropy(out.reshape(runs * batch, -1), y.reshape(-1), reduction="none").view(runs, batch).mean(1)
