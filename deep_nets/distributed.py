"""Several processes under torchrun: DistributedDataParallel with one process's semantics.

    torchrun --standalone --nproc_per_node=N deep_nets/train.py ...   (or python -m torch.distributed.run ...)

Every rank draws the same global batch (one seeded generator, as in one process) and trains on its slice of
batch_size / N examples; DDP averages the gradients, so a step is the step of one process on the whole batch up to
the order of the sums.  BatchNorm is synchronized across GPUs (SyncBatchNorm); on CPU (Gloo) PyTorch has no
synchronized BatchNorm, so each process normalizes its own slice there.  Rank 0 alone evaluates, writes and holds
the run directory; the others follow its decisions (resume, stop).  A signal to any rank stops all of them after
the same step: stop requests go through a small Gloo group each step, on the host, so the GPU is never waited for.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from largestep.config import ConfigError


@dataclass
class Processes:
    rank: int
    world: int
    device: torch.device
    backend: str | None = None  # None: one process without torchrun
    control: object = None  # the Gloo group that carries stop requests and rank 0's decisions

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module that trains: `model` itself in one process, DDP (with SyncBatchNorm on GPUs) under torchrun.
        It shares its parameters with `model`, which evaluation and checkpoints keep using."""
        if self.backend is None:
            return model
        if self.device.type == "cuda":
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return DistributedDataParallel(model, device_ids=[self.device.index] if self.device.type == "cuda" else None)

    def shard(self, global_batch: int) -> slice:
        """This rank's part of a global batch."""
        part = global_batch // self.world
        return slice(self.rank * part, (self.rank + 1) * part)

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        """The average over ranks (in place; every rank gets it)."""
        if self.world > 1:
            dist.all_reduce(value, op=dist.ReduceOp.SUM)
            value /= self.world
        return value

    def stop_requested(self, signum: int | None) -> int | None:
        """The signal any rank received (the largest number), so that all ranks stop after the same step."""
        if self.world == 1:
            return signum
        flag = torch.tensor([signum or 0], dtype=torch.int64)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=self.control)
        return int(flag) or None

    def share(self, obj):
        """Rank 0's `obj` on every rank (pickled over Gloo)."""
        if self.world == 1:
            return obj
        holder = [obj]
        dist.broadcast_object_list(holder, src=0, group=self.control)
        return holder[0]

    def close(self, ordered: bool) -> None:
        """Tear the process groups down.  `ordered` (every rank got here the normal way): first a barrier, so that
        no rank destroys its groups while another still talks to it (under load a rank left behind then died of
        its communication thread's abort, "terminate called without an active exception", after the run had
        finished), then the control group, then the default one, the training's objects that hold them freed first.  After an error on one rank the others may be
        waiting in a collective: no barrier then, the groups go at once."""
        if self.backend is None or not dist.is_initialized():
            return
        gc.collect()  # the DDP wrapper (its reducer holds the group) in a reference cycle: freed before the group
        if ordered and self.world > 1:
            dist.barrier(group=self.control)
        if self.control is not dist.group.WORLD:
            dist.destroy_process_group(self.control)
        dist.destroy_process_group()


def start(device_choice: str, batch_size: int, models_with_bn: bool) -> Processes:
    """One process, or this rank of the torchrun job that launched us (WORLD_SIZE, RANK, LOCAL_RANK in the
    environment; a job of one process too): NCCL on GPUs (one per process, by LOCAL_RANK), Gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = device_choice == "cuda" or (device_choice == "auto" and torch.cuda.is_available())
    if device_choice == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available (use --device cpu or auto)")
    if "RANK" not in os.environ:
        return Processes(0, 1, torch.device("cuda" if cuda else "cpu"))
    if batch_size % world:
        raise ConfigError(f"--batch_size {batch_size} is not divisible by the {world} processes of torchrun: "
                          f"choose a multiple of {world}")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"torchrun started {world} processes on this node but only {torch.cuda.device_count()} "
                              "GPUs are visible: set --nproc_per_node to the number of GPUs")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    backend = "nccl" if cuda else "gloo"
    dist.init_process_group(backend)
    control = dist.new_group(backend="gloo") if cuda else dist.group.WORLD
    processes = Processes(dist.get_rank(), world, device, backend, control)
    if not cuda and models_with_bn and world > 1 and processes.is_main:
        print(f"note: on CPU each of the {world} processes normalizes BatchNorm over its own {batch_size // world} "
              "examples (PyTorch synchronizes BatchNorm on GPUs only): results differ from one process's", flush=True)
    return processes
