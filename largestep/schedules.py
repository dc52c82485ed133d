"""Step-size schedules: the toy experiments' per-iteration schedules and the deep nets' epoch schedules.

A toy schedule maps an iteration index i (0-based: the i-th SGD/GD update) of a run of T iterations
to a step size.  Every schedule of the paper's toy experiments is one formula,

    eta(i) = lr * warmup(min(i, floor(s*T)) / T) / prod{k : (f, k) in decays, i > floor(f*T)},

where warmup is 1 (none), 1 + (G-1)*x (linear) or 1 + c*x**p (power).  The warmed-up value reached at
the end of the warmup phase is kept and divided at each decay, as in the paper's code.  The paper's two
codes divide at slightly different moments, and we keep both: its diagonal nets divide *after* update
floor(f*T) (`decay_timing="after"`, the condition above), its ReLU nets *before* it ("before": updates
i >= floor(f*T) use the divided step).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class ConfigError(ValueError):
    """A configuration value is out of range or inconsistent; the message says which and why."""


@dataclass(frozen=True)
class Warmup:
    """Multiply the step size by a growing factor during the first `until` fraction of the run.

    kind="linear": factor 1 + (gain - 1) * i/T  (the 1-D regression's warmup, gain = G).
    kind="power":  factor 1 + gain * (i/T)**power  (the multi-layer net's warmup: gain 5, power 0.5).
    """

    kind: str
    until: float
    gain: float
    power: float = 1.0

    def factor(self, x: np.ndarray) -> np.ndarray:
        if self.kind == "linear":
            return 1.0 + (self.gain - 1.0) * x
        return 1.0 + self.gain * np.power(x, self.power)

    def validate(self) -> None:
        if self.kind not in ("linear", "power"):
            raise ConfigError(f"warmup kind must be 'linear' or 'power', got {self.kind!r}")
        if not 0.0 <= self.until <= 1.0:
            raise ConfigError(f"warmup fraction must lie in [0, 1], got {self.until}")
        if not math.isfinite(self.gain) or self.gain < 0:
            raise ConfigError(f"warmup gain must be a finite number >= 0, got {self.gain}")


@dataclass(frozen=True)
class Schedule:
    """Constant step `lr`, an optional warmup, then step decays: ((fraction, factor), ...).

    "eta decayed at f by k" divides the step by k once, after update floor(f*T) (decay_timing="after",
    the diagonal nets) or before it ("before", the ReLU nets), 0-based.
    """

    lr: float
    decays: tuple[tuple[float, float], ...] = ()
    warmup: Warmup | None = None
    decay_timing: str = "after"

    def validate(self) -> None:
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ConfigError(f"step size must be a finite number > 0, got {self.lr}")
        for f, k in self.decays:
            if not 0.0 <= f <= 1.0:
                raise ConfigError(f"decay fraction must lie in [0, 1], got {f}")
            if not (math.isfinite(k) and k > 0):
                raise ConfigError(f"decay factor must be a finite number > 0, got {k}")
        if self.warmup is not None:
            self.warmup.validate()
        if self.decay_timing not in ("after", "before"):
            raise ConfigError(f"decay_timing must be 'after' or 'before', got {self.decay_timing!r}")

    def decay_iterations(self, iterations: int) -> list[int]:
        """floor(f*T) for each decay: the update after (or before) which the step is divided."""
        return [math.floor(f * iterations) for f, _ in self.decays]

    def values(self, iterations: int) -> np.ndarray:
        """Step size of each of the `iterations` updates, float64 array of length `iterations`."""
        i = np.arange(iterations, dtype=np.int64)
        eta = np.full(iterations, float(self.lr))
        if self.warmup is not None:
            end = math.floor(self.warmup.until * iterations)
            eta *= self.warmup.factor(np.minimum(i, end) / iterations)
        first_divided = 1 if self.decay_timing == "after" else 0
        for f, k in self.decays:
            eta[i >= math.floor(f * iterations) + first_divided] /= k
        return eta

    def describe(self) -> str:
        parts = [f"η={self.lr:g}"]
        if self.warmup is not None:
            parts.append(f"{self.warmup.kind} warmup to {self.warmup.until:.0%}")
        parts += [f"÷{k:g} at {f:.0%}" for f, k in self.decays]
        return ", ".join(parts)


# ---- deep nets: step size as a function of the fractional epoch (spec.md, "Deep nets") ----

DEEP_SCHEDULES = ("constant", "piecewise", "cosine", "piecewise_01epochs", "piecewise_03epochs",
                  "piecewise_05epochs")


def lr_schedule(name: str, epochs: float, lr_init: float, warmup_factor: float = 1.0,
                warmup_exp: float = 1.0):
    """The deep nets' schedule `name` as a function of the fractional epoch t (float or numpy array).

    t = epoch - 1 + (i+1)/steps_per_epoch, so t runs over (0, epochs].  For piecewise_0Xepochs the
    large-step phase lasts while t/T < f (f = 0.X); warmup_exp > 1 grows the step geometrically,
    < 1 as 1 + (100 t/T)**w, = 1 linearly towards warmup_factor*lr_init at T/2; the step reached at f is
    then divided by 10, and by 100 from 0.9 T on, as in the paper's code.
    """
    if name not in DEEP_SCHEDULES:
        raise ConfigError(f"unknown lr_schedule {name!r} (known: {', '.join(DEEP_SCHEDULES)})")
    for label, value in (("epochs", epochs), ("lr_init", lr_init), ("warmup_factor", warmup_factor),
                         ("warmup_exp", warmup_exp)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{label} must be a finite number > 0, got {value}")
    eta, T, w = float(lr_init), float(epochs), float(warmup_exp)

    def scalar_or_array(fn):
        def schedule(t):
            out = fn(np.asarray(t, dtype=np.float64))
            return float(out) if np.ndim(out) == 0 else out
        return schedule

    if name == "constant":
        return scalar_or_array(lambda t: np.full_like(t, eta))
    if name == "piecewise":
        return scalar_or_array(lambda t: np.where(t / T < 0.5, eta, np.where(t / T < 0.75, eta / 10, eta / 100)))
    if name == "cosine":
        return scalar_or_array(lambda t: eta * (0.5 + 0.5 * np.cos(np.pi * t / T)))
    f = int(name[len("piecewise_"):len("piecewise_") + 2]) / 10
    if w > 1:
        def warm(x):
            return eta * w ** (100 * x)
    elif w < 1:
        def warm(x):
            return eta * (1 + (100 * x) ** w)
    else:
        def warm(x):
            return eta * (1 + (warmup_factor - 1) * x / 0.5)
    peak = eta * (w ** (100 * f) if w > 1 else (1 + (100 * f) ** w) if w < 1 else (f / 0.5) * warmup_factor)

    def piecewise_decay(t):
        x = t / T
        return np.where(x < f, warm(np.minimum(x, f)), np.where(x < 0.9, peak / 10, peak / 100))
    return scalar_or_array(piecewise_decay)
