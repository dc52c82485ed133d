"""What train.py does while it runs: signals turned into a stop flag, and progress within an evaluation interval."""
from __future__ import annotations

import signal
import sys
import time

import numpy as np

from deep_nets.evaluation import N_BLOCKS


class Interrupt:
    """Turns SIGINT/SIGTERM (and SIGUSR2, which SLURM sends to a submitit job's processes before its time limit)
    into a flag the training loop checks after each step (then saves and exits)."""

    def __init__(self):
        self.signum = None
        self.previous = {}

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR2):
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


class Stopwatch:
    """Training time between evaluations without waiting for the GPU at every step: CUDA events on a GPU (read
    once, at the evaluation, where the loop waits anyway), the wall clock on a CPU."""

    def __init__(self, device):
        self.cuda = device.type == "cuda"

    def start(self) -> None:
        if self.cuda:
            import torch

            self.begin = torch.cuda.Event(enable_timing=True)
            self.begin.record()
        else:
            self.begin = time.perf_counter()

    def seconds(self) -> float:
        """Seconds since start(), the queued GPU work included."""
        if not self.cuda:
            return time.perf_counter() - self.begin
        import torch

        end = torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return self.begin.elapsed_time(end) / 1000


def describe(row: dict) -> str:
    """One line of a metrics row for the log."""
    # no training before the first evaluation: no throughput to show
    throughput = "" if row["images_per_s"] is None else f"{row['images_per_s']:,.0f} img/s, "
    sparsity = " ".join("-" if row[f"feature_sparsity_block{k}"] is None else f"{row[f'feature_sparsity_block{k}']:.3f}"
                        for k in range(1, N_BLOCKS + 1))
    return (f"iteration {row['iteration']:>6} epoch {row['epoch']:7.2f} lr {row['lr']:.4g} | train loss "
            f"{row['train_loss']:.4f} err {row['train_err']:.3f} | test loss {row['test_loss']:.4f} err "
            f"{row['test_err']:.3f} | EMA test err {row['test_err_ema']:.3f} | feature sparsity blocks 1-{N_BLOCKS} "
            f"{sparsity} | {throughput}eval {row['time_eval']:.1f} s")


class IntervalProgress:
    """Progress between two evaluations: a tqdm bar on a terminal; elsewhere (a log file, a pipe) one line
    every PROGRESS_EVERY_S seconds, so that a long evaluation interval is not silent."""

    def __init__(self, grid: np.ndarray, show: bool = True):
        self.grid, self.total, self.bar, self.show = grid, int(grid[-1]), None, show
        self.tty = sys.stdout.isatty()

    def start(self, iteration: int) -> None:
        self.close()
        if not self.show:  # the other ranks of a torchrun job: rank 0 speaks for them
            return
        self.first, self.since = iteration, time.perf_counter()
        self.next_eval = int(self.grid[np.searchsorted(self.grid, iteration, side="right")])
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(total=self.next_eval - iteration, leave=False, unit="it", dynamic_ncols=True,
                            desc=f"to the evaluation at iteration {self.next_eval:,}")
        self.last_line = self.since

    def step(self, iteration: int) -> None:
        if not self.show:
            return
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


PROGRESS_EVERY_S = 10.0  # without a terminal: seconds between progress lines within an evaluation interval

