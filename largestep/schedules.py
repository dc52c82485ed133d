"""Step-size schedules: one `Schedule` type for the toy experiments and the deep nets alike.

A schedule is a step size lr, an optional warmup, an optional cosine annealing, and step decays, as a
function of the fraction x of training done.  Every schedule of the paper is one formula,

    eta(x) = lr * warmup(min(x, s)) * cosine(x) / prod{k : (f, k) in decays, x past f},

where warmup is 1 (none), 1 + (G-1)*x' (linear), 1 + c*x'**p (power) or G**x' (exponential), x' = scale*x
the warmup's own clock, and cosine is 1 or (1 + cos(pi*x))/2.  The warmed-up value reached at the end of
the warmup phase is kept and divided at each decay, as in the paper's code.

Two evaluations of the same formula:
- `values(T)`: the toy experiments, per update i = 0..T-1 with x = i/T and the paper's integer rules.
  Its two codes divide at slightly different moments, and both are kept: its diagonal nets divide
  *after* update floor(f*T) (`decay_timing="after"`: updates i > floor(f*T) use the divided step), its
  ReLU nets *before* it ("before": updates i >= floor(f*T)); the warmup stops growing at i = floor(s*T).
- `at(x)`: the deep nets, at a fractional epoch t of T epochs, x = t/T continuous; a decay applies from
  x >= f on.  `deep_schedule(name, ...)` builds the paper's named deep-net schedules as Schedules.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .config import ConfigError


WARMUP_KINDS = ("linear", "power", "exponential")


@dataclass(frozen=True)
class Warmup:
    """Multiply the step size by a growing factor during the first `until` fraction of the run.

    With x' = scale * x (x the fraction of training done):
    kind="linear":      factor 1 + (gain - 1) * x'  (the 1-D regression's warmup, gain = G).
    kind="power":       factor 1 + gain * x'**power  (the multi-layer net's warmup: gain 5, power 0.5;
                        the deep nets' warmup_exp w < 1: gain 1, power w, scale 100).
    kind="exponential": factor gain**x'  (the deep nets' warmup_exp w > 1: gain w, scale 100).
    """

    kind: str
    until: float
    gain: float
    power: float = 1.0
    scale: float = 1.0

    def factor(self, x: np.ndarray) -> np.ndarray:
        x = self.scale * x if self.scale != 1.0 else x
        if self.kind == "linear":
            return 1.0 + (self.gain - 1.0) * x
        if self.kind == "exponential":
            return np.power(self.gain, x)
        return 1.0 + self.gain * np.power(x, self.power)

    def validate(self) -> None:
        if self.kind not in WARMUP_KINDS:
            raise ConfigError(f"warmup kind must be one of {', '.join(WARMUP_KINDS)}, got {self.kind!r}")
        if not (math.isfinite(self.scale) and self.scale > 0):
            raise ConfigError(f"warmup scale must be a finite number > 0, got {self.scale}")
        if not 0.0 <= self.until <= 1.0:
            raise ConfigError(f"warmup fraction must lie in [0, 1], got {self.until}")
        if not math.isfinite(self.gain) or self.gain < 0:
            raise ConfigError(f"warmup gain must be a finite number >= 0, got {self.gain}")
        if not (math.isfinite(self.power) and self.power > 0):
            raise ConfigError(f"warmup power must be a finite number > 0, got {self.power}")


@dataclass(frozen=True)
class Schedule:
    """Step `lr`, an optional warmup, optional cosine annealing, then step decays ((fraction, factor), ...).

    "eta decayed at f by k" divides the step by k once: in `values(T)` after update floor(f*T)
    (decay_timing="after", the diagonal nets) or before it ("before", the ReLU nets), 0-based; in
    `at(x)` from x >= f on.
    """

    lr: float
    decays: tuple[tuple[float, float], ...] = ()
    warmup: Warmup | None = None
    decay_timing: str = "after"
    cosine: bool = False

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
        if self.cosine:
            eta *= 0.5 + 0.5 * np.cos(np.pi * (i / iterations))
        first_divided = 1 if self.decay_timing == "after" else 0
        for f, k in self.decays:
            eta[i >= math.floor(f * iterations) + first_divided] /= k
        return eta

    def at(self, fraction):
        """Step size at the fraction `fraction` (float or array) of training: the deep nets' evaluation."""
        x = np.asarray(fraction, dtype=np.float64)
        eta = np.full_like(x, float(self.lr))
        if self.warmup is not None:
            eta = eta * self.warmup.factor(np.minimum(x, self.warmup.until))
        if self.cosine:
            eta = eta * (0.5 + 0.5 * np.cos(np.pi * x))
        divisor = np.ones_like(x)
        for f, k in self.decays:
            divisor = np.where(x >= f, divisor * k, divisor)
        eta = eta / divisor
        return float(eta) if eta.ndim == 0 else eta

    def describe(self) -> str:
        """'η=0.0002, warmed up (linear) to 0.0016 by 2%, ÷2.5 at 2%': a legend's words for the schedule,
        the step a warmup reaches included (what the large-step phase runs at)."""
        parts = [f"η={self.lr:g}"]
        if self.warmup is not None:
            w = self.warmup
            peak = self.lr * float(w.factor(np.float64(w.until)))
            kind = f"power {w.power:g}" if w.kind == "power" else w.kind
            parts.append(f"warmed up ({kind}) to {peak:.3g} by {w.until:.0%}")
        if self.cosine:
            parts.append("cosine")
        parts += [f"÷{k:.3g} at {f:.0%}" for f, k in self.decays]
        return ", ".join(parts)


# ---- deep nets: the paper's named schedules, as Schedules evaluated at the fractional epoch ----

DEEP_SCHEDULES = ("constant", "piecewise", "cosine", "piecewise_01epochs", "piecewise_03epochs",
                  "piecewise_05epochs", "step_01epochs", "step_03epochs", "step_05epochs")
# the phase maps' two-step family: lr_init until the fraction F of training, then the step S (the same S in every
# cell of a map, whatever lr_init, so that cells differ only in the large-step phase): "until0.3_then0.05"
TWO_STEP = re.compile(r"until(0\.[0-9]*[1-9])_then([0-9]+(?:\.[0-9]*)?(?:e-?[0-9]+)?)")


def two_step_name(fraction: float, final_lr: float) -> str:
    return f"until{fraction:g}_then{final_lr:g}"


class DeepScheduleNames:
    """The names --lr_schedule accepts (argparse `choices`): the fixed ones and the two-step family."""

    def __contains__(self, name) -> bool:
        return name in DEEP_SCHEDULES or (isinstance(name, str) and TWO_STEP.fullmatch(name) is not None)

    def __iter__(self):
        return iter((*DEEP_SCHEDULES, "untilF_thenS"))


def deep_schedule(name: str, lr_init: float, warmup_factor: float = 1.0, warmup_exp: float = 1.0) -> Schedule:
    """The deep nets' schedule `name` as a Schedule over the fraction x = t/T of training.

    constant: lr_init.  piecewise: /10 from x = 0.5, /100 from 0.75.  cosine: lr_init (1 + cos(pi x))/2.
    step_0Xepochs (ours, not the paper's): lr_init until f, /10 from f, /100 from 0.9 — the same large
    step and the same decay for every f, the control that separates the length of the large-step phase
    from the size of the decay.
    piecewise_0Xepochs (f = 0.X): a warmup while x < f, then the step reached is divided by 10 at f and
    by 10 again at 0.9 — warmup_exp w > 1: lr_init * w**(100 x); w < 1: lr_init (1 + (100 x)**w).
    With w = 1 (the paper's linear branch) the warmup runs linearly from lr_init towards
    warmup_factor * lr_init at x = 0.5, but the paper's code sets the step after f to
    (f / 0.5) * warmup_factor * lr_init / 10, not the warmed-up value / 10: the first decay then divides
    the step reached by 10 (1 + (warmup_factor - 1) f / 0.5) / ((f / 0.5) warmup_factor).  With
    warmup_factor = 1 that is 50 at f = 0.1, 16.7 at 0.3 and 10 at 0.5 — so runs that differ in f also
    differ five-fold in how far the step falls.  Kept for parity with the paper's runs.
    """
    if name not in DeepScheduleNames():
        raise ConfigError(f"unknown lr_schedule {name!r} (known: {', '.join(DeepScheduleNames())}, "
                          "F in (0, 1) written 0.X)")
    for label, value in (("lr_init", lr_init), ("warmup_factor", warmup_factor), ("warmup_exp", warmup_exp)):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{label} must be a finite number > 0, got {value}")
    lr, w = float(lr_init), float(warmup_exp)
    if name == "constant":
        return Schedule(lr)
    if name == "piecewise":
        return Schedule(lr, ((0.5, 10.0), (0.75, 10.0)))
    if name == "cosine":
        return Schedule(lr, cosine=True)
    two_step = TWO_STEP.fullmatch(name)
    if two_step:
        fraction, final = float(two_step.group(1)), float(two_step.group(2))
        if not (math.isfinite(final) and final > 0):
            raise ConfigError(f"lr_schedule {name!r}: the step after the decay must be > 0")
        return Schedule(lr, ((fraction, lr / final),))
    f = int(name.split("_")[1][:2]) / 10
    if name.startswith("step_"):
        return Schedule(lr, ((f, 10.0), (0.9, 10.0)))
    if w > 1:
        return Schedule(lr, ((f, 10.0), (0.9, 10.0)), Warmup("exponential", f, gain=w, scale=100.0))
    if w < 1:
        return Schedule(lr, ((f, 10.0), (0.9, 10.0)), Warmup("power", f, gain=1.0, power=w, scale=100.0))
    warmup = Warmup("linear", f, gain=float(warmup_factor), scale=2.0)
    first_decay = 10.0 * float(warmup.factor(f)) / ((f / 0.5) * warmup_factor)
    return Schedule(lr, ((f, first_decay), (0.9, 10.0)), warmup)


def lr_schedule(name: str, epochs: float, lr_init: float, warmup_factor: float = 1.0, warmup_exp: float = 1.0):
    """`deep_schedule(...)` as a function of the fractional epoch t = epoch - 1 + (i+1)/steps_per_epoch,
    which runs over (0, epochs]: returns t -> step size (float for a float, array for an array)."""
    if not (math.isfinite(epochs) and epochs > 0):
        raise ConfigError(f"epochs must be a finite number > 0, got {epochs}")
    schedule = deep_schedule(name, lr_init, warmup_factor, warmup_exp)
    return lambda t: schedule.at(np.asarray(t, dtype=np.float64) / float(epochs))
