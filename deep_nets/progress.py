"""What train.py does while it runs: signals turned into a stop flag, and progress within an evaluation interval."""
from __future__ import annotations

import signal
import sys
import time

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

