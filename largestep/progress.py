"""One progress bar per experiment, over all its training rounds.

The number of rounds is not known in advance (diverged seeds are replaced in further rounds), so each round
adds its work to the bar's total when it starts: the percentage can step back at a new round, the ETA never
runs negative.  Within a round, each stop on the evaluation grid counts one unit for its evaluation and, in
proportion, one more unit per (T / stops) iterations, weighted by the round's rows: the first stops (one
iteration and one evaluation each) and the later ones (hundreds of iterations) then weigh about what they
cost.  LARGESTEP_PROGRESS=0 turns bars off (the notebook runner sets it, so that saved notebooks hold no
stale bar).
"""
from __future__ import annotations

import os

PROGRESS_ENV = "LARGESTEP_PROGRESS"


def progress_enabled(enabled: bool = True) -> bool:
    return enabled and os.environ.get(PROGRESS_ENV, "1") not in ("0", "")


class ExperimentProgress:
    def __init__(self, name: str, enabled: bool = True):
        self.name, self.enabled, self.rounds, self.bar = name, progress_enabled(enabled), 0, None
        self.rows = self.iterations = self.stops = self.done = 0
        self.unit = "it"

    def start_batch(self, rows: int, iterations: int, stops: int, unit: str = "it") -> None:
        """A training round of `rows` rows (runs x seeds) over `iterations` updates with `stops` evaluations."""
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=0, desc=self.name, leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
        self.rounds += 1
        self.rows, self.iterations, self.stops, self.done, self.unit = rows, iterations, max(stops, 1), 0, unit
        self.bar.total += 2 * self.stops * rows
        self._show()

    def advance(self, iterations: int) -> None:
        """One stop on the grid reached, after `iterations` more updates."""
        if self.bar is None:
            return
        self.done += iterations
        self._show()  # before update(), which redraws: else the bar ends showing the count before last
        work = self.rows * (1 + iterations * self.stops / max(self.iterations, 1))
        self.bar.update(min(work, self.bar.total - self.bar.n))  # rounding must not overshoot the total

    def _show(self) -> None:
        self.bar.set_postfix_str(f"round {self.rounds} ({self.rows} runs x seeds): "
                                 f"{self.done:,}/{self.iterations:,} {self.unit}", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
