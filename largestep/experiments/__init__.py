"""The registry of the paper's experiments, in the order `reproduce` runs them.

An `Experiment` ties a default (full-scale) config to `run(config, n_seeds, progress) -> results` and
`figures(results) -> {file stem: matplotlib Figure}`.  Figures read the results dict alone, so they can
be redrawn from a results file.  An experiment may also write extra files (an animation) from its
results with `extras(results, out_dir) -> [paths]`.
"""
from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

# name -> module defining it (as a module-level Experiment called NAME); imported on first use.
_MODULES = {
    "stabilization_1d": "largestep.experiments.valley",
    "loss_surface": "largestep.experiments.valley",
    "diag_sgd": "largestep.experiments.diag",
    "diag_gd": "largestep.experiments.diag",
    "relu_1d": "largestep.experiments.relu",
    "relu_1d_overreg": "largestep.experiments.relu",
    "relu_two_layer": "largestep.experiments.relu",
    "relu_multi_layer": "largestep.experiments.relu",
}


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    config: Any  # the full-scale config; config.quick() is the CI-sized one
    run: Callable[..., dict]
    figures: Callable[[dict], dict]
    extras: Callable[[dict, Any], list] | None = None


def available() -> list[str]:
    """Names of the experiments whose module is present, in registry order."""
    names = []
    for name, module in _MODULES.items():
        if importlib.util.find_spec(module) is not None:
            names.append(name)
    return names


def get(name: str) -> Experiment:
    if name not in _MODULES:
        raise KeyError(name)
    return getattr(importlib.import_module(_MODULES[name]), name.upper())
