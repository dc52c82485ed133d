"""The registry of the paper's experiments, and the one path every run takes: plan, run, envelope, save.

Each experiment family lives in one module of this package with its configs, `run`, figures and claims:
`valley` (stabilization_1d, loss_surface), `diag` (diag_sgd, diag_gd), `relu` (the four ReLU experiments),
`draws` (the ReLU claims over data draws), `phase` (the (eta, f) maps) and `deep` (deep_mnist1d through
deep_nets/train.py; the claims of the paper's collected CIFAR sweeps in its companion module `cifar`).  A family module defines module-level `Experiment`s and `figures(results)` (and may
define `extras(results, out_dir)` for files other than figures, `check(results)` for the results' own
fields, `summary(results)` for the one-line summary, and, for results of its family that no registered
experiment made, `content_claims(results)`, `content_note(results)` (how they differ from the settings those
claims are stated for) and `references(results)` (the paper's values beside theirs)).  Families are imported
on first use, so that listing the experiments loads neither numba, nor torch, nor matplotlib.

A results file records its experiment and family; `draw`, `check`, `table` and `compare` read it through
`load` (one schema check where a file enters) and dispatch on the family it records.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

# experiment -> family module, in the order `reproduce` runs them
FAMILY = {
    "stabilization_1d": "valley",
    "loss_surface": "valley",
    "diag_sgd": "diag",
    "diag_gd": "diag",
    "relu_1d": "relu",
    "relu_1d_overreg": "relu",
    "relu_two_layer": "relu",
    "relu_multi_layer": "relu",
    "relu_two_layer_draws": "draws",
    "relu_multi_layer_draws": "draws",
    "phase_diag": "phase",
    "phase_relu": "phase",
    "deep_phase": "phase",
    "deep_mnist1d": "deep",
}
FAMILIES = tuple(dict.fromkeys(FAMILY.values()))


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    config: Any  # the full-scale config (a frozen dataclass); config.quick() is the CI-sized one
    run: Callable[..., dict]  # run(config, n_seeds, progress) -> the family's results (runs, seconds, ...)
    claims: tuple = ()  # largestep.claims.Claim: what the results must show, runs named by their key
    notebook: str = ""  # where it is narrated
    headline: tuple[str, ...] = ()  # the final metrics README's table shows
    seeds: int = 5  # surviving training seeds per run asked for by default
    on_request: bool = False  # run only when named (minutes of train.py processes)

    @property
    def family(self) -> str:
        return FAMILY[self.name]

    @property
    def figures(self) -> Callable[[dict], dict]:
        """Its family's figures(results) -> {file stem: matplotlib Figure}, drawn from the results alone."""
        return family_module(self.family).figures


def available() -> list[str]:
    """Names of the experiments whose family module is present, in registry order."""
    return [name for name, family in FAMILY.items()
            if importlib.util.find_spec(f"{__name__}.{family}") is not None]


def default_names() -> list[str]:
    """What `reproduce` runs when no experiment is named: every available one but those run on request."""
    return [name for name in available() if not get(name).on_request]


def family_module(family: str):
    if family not in FAMILIES:
        raise KeyError(family)
    return importlib.import_module(f"{__name__}.{family}")


def get(name: str) -> Experiment:
    if name not in FAMILY:
        raise KeyError(name)
    return getattr(family_module(FAMILY[name]), name.upper())


# ---------------------------------------------------------------- plan and run


QUICK_SEEDS = 2  # seeds per run (tries per phase-map cell) of a quick run unless asked otherwise


def plan(experiment: Experiment, config=None, n_seeds: int | None = None, quick: bool = False):
    """The config to run (the experiment's own, its quick() version, or `config`) and the seeds, checked once
    before anything runs: every field (`config.validate`), every run label that matplotlib will draw, and the
    memory the largest training round needs.  ConfigError says what is wrong."""
    from ..config import ConfigError
    from ..plotting import check_label

    if config is None:
        config = experiment.config.quick() if quick else experiment.config
    if n_seeds is None:  # a quick run checks the pipeline, not the statistics: a few seeds are enough
        n_seeds = min(experiment.seeds, QUICK_SEEDS) if quick else experiment.seeds
    if n_seeds < 1:
        raise ConfigError(f"the number of seeds must be >= 1, got {n_seeds}")
    config.validate()
    for label in getattr(config, "labels", lambda: [])():
        check_label(label)
    (need, fields), total = config.memory(n_seeds), os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > total:
        raise ConfigError(f"with {n_seeds} seed(s) per run it would need at least {need / 2**30:,.1f} GiB of "
                          f"memory, more than this machine's {total / 2**30:.1f} GiB: lower {fields} or --seeds")
    return config, n_seeds


def run_experiment(experiment: Experiment, config=None, n_seeds: int | None = None, quick: bool = False,
                   progress: bool = True, planned: bool = False) -> dict:
    """Check (`plan`; skipped when planned=True, as `reproduce` plans every experiment first), run with a
    progress bar and at most LARGESTEP_THREADS BLAS threads, and return the complete results dict: the family's
    results inside the one envelope every results file has (experiment, family, quick, config, n_seeds,
    seconds, provenance).  The entry point shared by `reproduce` and the notebooks."""
    import time

    from ..config import to_dict
    from ..progress import ExperimentProgress
    from ..results import provenance
    from ..threads import limited_threads

    if not planned:
        config, n_seeds = plan(experiment, config, n_seeds, quick)
    start = time.perf_counter()
    bar = ExperimentProgress(experiment.name, enabled=progress)
    try:
        with limited_threads():
            results = experiment.run(config, n_seeds=n_seeds, progress=bar)
    finally:
        bar.close()
    results = {"experiment": experiment.name, "family": experiment.family, "quick": bool(quick),
               "config": to_dict(config), "n_seeds": n_seeds, **results, "provenance": provenance()}
    results["seconds"] = {**results.get("seconds", {}), "total": time.perf_counter() - start}
    return results


# ---------------------------------------------------------------- reading, drawing and writing results


def load(path) -> dict:
    """A results file, schema-checked (`results.load_results`, then its family's own fields); NotResults
    names the file and the field when it is not a readable results file."""
    from ..results import NotResults, load_results

    results = load_results(path, FAMILIES)
    check = getattr(family_module(results["family"]), "check", None)
    if check is not None:
        try:
            check(results)
        except NotResults as err:
            raise NotResults(f"{path}: {err}") from None
    return results


def figures_for(results: dict) -> Callable[[dict], dict]:
    """The function that draws `results`: its family's `figures`."""
    return family_module(results["family"]).figures


def save(results: dict, out_dir, with_json: bool = True) -> list:
    """Write `results` into out_dir as one set: NAME.json (unless with_json=False) and every figure (PNG, PDF)
    and extra file its family draws, replacing earlier files of the same names together or not at all.

    The one library entry for writing results (`reproduce`, `draw`, the deep sweep's --collect).  Returns the
    paths written; OSError when out_dir cannot take them (its earlier files then stay as they were).
    """
    import matplotlib.pyplot as plt

    from ..plotting import save_formats
    from ..results import inside, save_json, written_together

    import warnings

    module = family_module(results["family"])
    out_dir, name = Path(out_dir), results["experiment"]
    with written_together(out_dir, name) as staging, warnings.catch_warnings():
        # numpy's warnings on the NaNs of diverged seeds (an all-NaN column of a median) say nothing to a reader
        warnings.simplefilter("ignore", RuntimeWarning)
        written = [save_json(results, inside(staging, f"{name}.json"))] if with_json else []
        for stem, fig in module.figures(results).items():
            written += save_formats(fig, inside(staging, stem))
            plt.close(fig)
        if hasattr(module, "extras"):
            written += [Path(p) for p in module.extras(results, staging)]
    return [out_dir / p.name for p in written]


# ---------------------------------------------------------------- claims and summaries


def claims_for(results: dict) -> list:
    """The claims a results file is checked against: its experiment's, or what its family states for results
    no registered experiment made (runs you collected yourself)."""
    if results["experiment"] in FAMILY and FAMILY[results["experiment"]] == results["family"]:
        return list(get(results["experiment"]).claims)
    content_claims = getattr(family_module(results["family"]), "content_claims", None)
    return content_claims(results) if content_claims else []


def print_claims(results: dict, *others: dict) -> None:
    """Print the claims of `results` as `check` does; pass the results of experiments it compares with
    (relu_1d for relu_1d_overreg) as further arguments."""
    from ..claims import evaluate, report

    verdicts = evaluate(results, claims_for(results), {o["experiment"]: o for o in others})
    print(report(results["experiment"], verdicts, bool(results.get("quick")), scale_note(results)))
    beside = references(results)
    if beside:
        print(beside)


def _content_hook(results: dict, name: str) -> str:
    """A family's text on results that no registered experiment made ('' for a registered one, or no hook)."""
    if results["experiment"] in FAMILY:
        return ""
    hook = getattr(family_module(results["family"]), name, None)
    return hook(results) if hook else ""


def references(results: dict) -> str:
    """The paper's published values beside the medians of `results`, where its family holds them ('' otherwise)."""
    return _content_hook(results, "references")


def scale_note(results: dict) -> str:
    """Why claims may fail for reasons other than the science: a quick run or an edited config."""
    from ..config import to_dict

    if results.get("quick"):
        return "quick run: the claims are stated for the full-scale settings"
    if results["experiment"] not in FAMILY:
        return _content_hook(results, "content_note")
    import dataclasses
    import json

    config = get(results["experiment"]).config
    current, recorded = to_dict(config), results.get("config")
    # a field added since the file was written had its default then: missing, it differs only if no longer default
    added = {f.name: json.loads(json.dumps(f.default)) for f in dataclasses.fields(config)
             if f.name not in (recorded or {}) and f.default is not dataclasses.MISSING}
    return "" if isinstance(recorded, dict) and {**added, **recorded} == current else \
        "config differs from the paper's settings"


def summary(results: dict) -> str:
    """One line per run: each final metric's median [min, max] over surviving seeds, and what diverged."""
    import numpy as np

    from ..seeds import divergence_note
    from ..stats import learner_values

    seconds = ", ".join(f"{k} {v:.1f}s" for k, v in results.get("seconds", {}).items())
    head = (f"{results['experiment']}{' (quick)' if results.get('quick') else ''}: {seconds}; median [min, max] "
            "over surviving seeds")
    own = getattr(family_module(results["family"]), "summary", None)
    if own is not None:
        return f"{head}\n  {own(results)}"
    lines = [head]
    for run in results["runs"]:
        parts = []
        for metric in run["final_median"]:
            values = learner_values(run, metric)
            if values.size:
                spread = f" [{values.min():.3g}, {values.max():.3g}]" if values.size > 1 else ""
                parts.append(f"{metric}={float(np.median(values)):.4g}{spread}")
        lines.append(f"  {run['label']}: {', '.join(parts) or 'no surviving seed'}  "
                     f"({divergence_note(run, results.get('n_seeds'))})")
    return "\n".join(lines)


def per_seed_table(results: dict, metric: str) -> str:
    """Final `metric` of every seed (rows) in every run (columns), for paired comparisons across runs.

    Runs of one experiment share training seeds (seed s draws the same SGD sampling order in every run),
    so reading a row compares schedules on the same noise; '-' marks a seed the run did not reach or
    that diverged ('div').
    """
    runs = results["runs"]
    seeds = sorted({s["seed"] for run in runs for s in run["final_per_seed"]})
    width = max(10, *(len(run["label"]) for run in runs))
    lines = [f"{metric} at the end of training", "seed " + "".join(f"{run['label']:>{width + 2}}" for run in runs)]
    for seed in seeds:
        cells = []
        for run in runs:
            entry = next((s for s in run["final_per_seed"] if s["seed"] == seed), None)
            value = "-" if entry is None else "div" if entry["diverged"] else f"{entry[metric]:.4g}"
            cells.append(f"{value:>{width + 2}}")
        lines.append(f"{seed:<5d}" + "".join(cells))
    return "\n".join(lines)
