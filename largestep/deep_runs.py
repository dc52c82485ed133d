"""Run directories of `deep_nets/train.py` as the package's results records.

A run directory holds `config.json` (the flags, the run's size) and `metrics.jsonl` (one evaluation a line).
`read_run` turns one into per-metric curves on its evaluation grid; `collect_runs(DIR)` turns any tree of
them into the results format of the toy experiments (runs = groups of directories that differ only in
the seed; per-seed curves, seeds tried and diverged, final values over survivors), so the shared figure
code draws your own CIFAR runs as it draws the paper's toy experiments.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .schedules import deep_schedule
from .seeds import SeedRow, run_record

# what the curves hold; the rest of a metrics line is bookkeeping (time, images/s, the raw sparsities)
METRICS = ("train_loss", "train_err", "test_loss", "test_err", "test_loss_ema", "test_err_ema",
           *(f"feature_sparsity_block{b}" for b in range(1, 6)))
# flags that do not make two runs different runs of a study (where they ran, how fast, which seed)
NOT_A_RUN = {"seed", "out_dir", "data_dir", "download", "skip_checksum", "device", "threads", "resume",
             "eval_batch_size", "stop_at_iteration", "exp_name", "progress_seconds", "compile", "memory_format"}


class RunDirError(ValueError):
    """A directory is not a readable train.py run."""


@dataclass
class DeepRun:
    path: Path
    config: dict
    grid: np.ndarray  # iterations at which it evaluates, from its config (0, every eval_iter_freq, the end)
    curves: dict[str, np.ndarray]  # metric -> values on the grid (NaN where not reached or diverged)
    diverged: bool
    complete: bool

    @property
    def args(self) -> dict:
        return self.config["args"]

    def seed_row(self) -> SeedRow:
        final = {m: float(v[-1]) for m, v in self.curves.items()}
        return SeedRow(seed=int(self.args["seed"]), diverged=self.diverged, curves=self.curves, final=final,
                       extras={})


def evaluation_iterations(config: dict) -> np.ndarray:
    total, every = int(config["iterations"]), int(config["args"]["eval_iter_freq"])
    return np.unique(np.concatenate([np.arange(0, total + 1, every), [total]])).astype(np.int64)


def read_run(path) -> DeepRun:
    """One run directory; a torn last line (a run killed while writing) is ignored."""
    path = Path(path)
    try:
        config = json.loads((path / "config.json").read_text())
        lines = (path / "metrics.jsonl").read_text().splitlines() if (path / "metrics.jsonl").exists() else []
    except (OSError, json.JSONDecodeError) as err:
        raise RunDirError(f"{path}: not a readable run directory ({err})") from None
    rows = []
    for k, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if k < len(lines) - 1:
                raise RunDirError(f"{path / 'metrics.jsonl'}: line {k + 1} is not JSON") from None
    grid = evaluation_iterations(config)
    column = {int(it): g for g, it in enumerate(grid)}
    curves = {m: np.full(len(grid), np.nan) for m in METRICS}
    diverged = False
    for row in rows:
        diverged |= bool(row.get("diverged"))
        g = column.get(int(row["iteration"]))
        if g is None or diverged:
            continue
        for m in METRICS:
            value = row.get(m)
            curves[m][g] = np.nan if value is None else float(value)
    reached = bool(rows) and int(rows[-1]["iteration"]) >= int(config["iterations"])
    return DeepRun(path, config, grid, curves, diverged, complete=reached or diverged)


def run_label(args: dict) -> str:
    """'piecewise_01epochs, η=0.6: ÷50 at 10%': the schedule's name, step and first decay (its size included)."""
    schedule = deep_schedule(args["lr_schedule"], args["lr_init"], args["warmup_factor"], args["warmup_exp"])
    first = f": ÷{schedule.decays[0][1]:.3g} at {schedule.decays[0][0]:.0%}" if schedule.decays else ""
    return f"{args['lr_schedule']}, η={args['lr_init']:g}{first}"


def run_spec(args: dict, iterations: int) -> dict:
    """The schedule (as the toy records hold it) and the iterations of its decays, for the figures."""
    from .config import to_dict

    schedule = deep_schedule(args["lr_schedule"], args["lr_init"], args["warmup_factor"], args["warmup_exp"])
    return {"schedule": to_dict(schedule), "flags": args,
            "decay_iterations": [int(round(f * iterations)) for f, _ in schedule.decays]}


def collect_runs(root, name: str | None = None) -> dict:
    """Every train.py run directory under `root`, grouped into runs (same flags but the seed), as a results
    record: `plotting` and `claims` read it as they read a toy experiment's.  Incomplete runs are left out
    (and listed under "incomplete")."""
    root = Path(root)
    found = sorted(p.parent for p in root.rglob("config.json") if (p.parent / "metrics.jsonl").exists())
    if not found:
        raise RunDirError(f"{root}: no train.py run directories (config.json + metrics.jsonl) below it")
    groups: dict[str, list[DeepRun]] = {}
    incomplete = []
    for path in found:
        run = read_run(path)
        if not run.complete:
            incomplete.append(str(path))
            continue
        key = json.dumps({k: v for k, v in run.args.items() if k not in NOT_A_RUN}, sort_keys=True)
        groups.setdefault(key, []).append(run)
    runs = []
    for members in groups.values():
        members.sort(key=lambda r: r.args["seed"])
        first = members[0]
        runs.append(run_record(f"run{len(runs)}", run_label(first.args),
                               run_spec(first.args, first.config["iterations"]),
                               [m.seed_row() for m in members], first.grid))
    common = {k: v for k, v in runs[0]["flags"].items()
              if k not in NOT_A_RUN and all(r["flags"].get(k) == v for r in runs)} if runs else {}
    return {"experiment": name or root.name, "family": "deep", "quick": False,
            "config": {"collected_from": str(root), **common},
            "n_seeds": max((len(r["seeds"]) for r in runs), default=0), "runs": runs, "incomplete": incomplete}
