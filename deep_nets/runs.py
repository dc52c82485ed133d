"""A deep run as files: its name, its identity, its evaluation grid, config.json and metrics.jsonl, and any tree
of run directories as the package's results records.

Two words, as in the toy experiments.  A *run directory* is one seed's train.py process:
<out_dir>/<exp_name>/<run name>/ with config.json, metrics.jsonl (one evaluation a line) and checkpoint.pt
(deep_nets/run_dir.py).  A *run* of a results file is one setting over seeds: the run directories whose
identities differ in the seed alone, with per-seed curves, seeds tried and diverged, and final values over the
survivors (`collect_runs`, the deep study), so that the shared figure code draws them.

A run directory's identity is every flag that changes what it computes: all of train.py's flags but
SETUP_FLAGS.  Its name spells that identity out, floats exactly (repr), flags at their default left out; where
the name cannot hold it all (an npz file's folder, odd characters, more than NAME_LENGTH characters) a short hash
of the identity ends the name, and config.json records the identity in full.  No torch here: the package's
commands read runs without it.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from largestep.results import inside, load_json, provenance, save_json, to_jsonable
from largestep.schedules import deep_schedule
from largestep.streams import DEEP_OFFSETS
from largestep.seeds import SeedRow, run_record

from deep_nets.flags import EVAL_BATCH, build_parser

# what the curves hold; the rest of a metrics line is bookkeeping (time, images/s, the raw sparsities)
METRICS = ("train_loss", "train_err", "test_loss", "test_err", "test_loss_ema", "test_err_ema",
           *(f"feature_sparsity_block{b}" for b in range(1, 6)))
# flags that say where and how fast a run computes, not what: they may differ between an interrupted run and its
# resumption, and between two copies of one run (exp_name: the folder that holds run directories)
SETUP_FLAGS = frozenset({"resume", "device", "threads", "eval_batch_size", "out_dir", "data_dir", "download",
                         "skip_checksum", "stop_at_iteration", "compile", "memory_format", "exp_name"})
SCHEDULE_FLAGS = ("lr_schedule", "lr_init", "warmup_exp", "warmup_factor")
# the name: these flags always, in this order ...
NAMED = ("dataset", "model", "model_width", "lr_schedule", "lr_init", "warmup_exp", "warmup_factor", "momentum",
         "l2_reg", "no_data_augm", "batch_size", "epochs", "seed")
# ... and these where they differ from their default, each after its label
NAMED_IF_SET = {"eval_iter_freq": "eval", "swa_tau": "ema", "sparsity_examples": "sparsityex",
                "sparsity_neurons": "neurons", "corr_threshold": "corr", "bn_refresh_examples": "bnrefresh",
                "precision": ""}
# a name's characters: letters, digits, '_', '-', '.' (it never starts with '.': it starts with the data set's name);
# its length leaves room, within a file system's 255 bytes, for the lock and staging names made from it
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
NAME_LENGTH = 200
TEXT_LABELS = {"model_width": "w", "lr_init": "lr", "warmup_exp": "wexp", "warmup_factor": "wf", "momentum": "mom",
               "l2_reg": "l2", "batch_size": "bs", "epochs": "ep", "seed": "seed"}


class RunDirError(ValueError):
    """A directory is not a readable train.py run; the message names it and says why."""


def defaults() -> dict:
    """train.py's flags at their defaults."""
    return dict(_default_items())


@functools.lru_cache(maxsize=None)
def _default_items() -> tuple:
    return tuple(vars(build_parser().parse_args([])).items())


def identity(args: dict) -> dict:
    """The flags that make a run directory what it is (a flag added since the run began: its default)."""
    return {k: v for k, v in sorted({**defaults(), **args}.items()) if k not in SETUP_FLAGS}


def setting(args: dict) -> dict:
    """The identity of a results run: a run directory's, the seed left out."""
    return {k: v for k, v in identity(args).items() if k != "seed"}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def spelled(value) -> str:
    """A flag's value in a name, exactly: floats by repr ('0.1', '1e-05'), '1.0' as '1', '1e+16' as '1e16'."""
    if isinstance(value, float):
        text = repr(value)
        return (text[:-2] if text.endswith(".0") else text).replace("e+", "e")
    return str(value)


def run_name(args: dict) -> str:
    """The name of the run directory of `args` (train.py's flags): readable, and distinct for distinct identities."""
    a = {**defaults(), **args}
    exact = True
    if a["dataset"].startswith("npz:"):  # the file's folder is not in the name: the hash tells two files apart
        stem = Path(a["dataset"][4:]).stem
        data, exact = "npz-" + UNSAFE.sub("-", stem), False
    else:
        data = a["dataset"]
    parts = [data, a["model"]]
    for flag in NAMED[2:]:
        if flag == "no_data_augm":
            parts.append("noaug" if a[flag] else "aug")
        elif flag == "lr_schedule":
            parts.append(a[flag])
        else:
            parts.append(TEXT_LABELS[flag] + spelled(a[flag]))
    base = defaults()
    parts += [label + spelled(a[flag]) for flag, label in NAMED_IF_SET.items() if a[flag] != base[flag]]
    name = "_".join(parts)
    if exact and len(name) <= NAME_LENGTH and not UNSAFE.search(name):
        return name
    readable = UNSAFE.sub("-", name)[:NAME_LENGTH - 13]
    return f"{readable}_{digest(identity(a))[:12]}"


def run_dir(args: dict) -> Path:
    """<out_dir>/<exp_name>/<run name>: where train.py with `args` writes (ValueError for an exp_name that would
    leave out_dir; the run name is plain by construction)."""
    return inside(args["out_dir"], args["exp_name"]) / run_name(args)


def evaluation_grid(iterations: int, every: int) -> np.ndarray:
    """The iterations at which a run evaluates: 0, every `every` iterations, and the last."""
    return np.unique(np.concatenate([np.arange(0, iterations + 1, every), [iterations]])).astype(np.int64)


# ---------------------------------------------------------------- config.json

def run_config(a, data, processes, versions: dict, argv: list[str]) -> dict:
    """What config.json records: the flags and the identity they make, the data (with a digest of its contents),
    the evaluation sizes and random streams in effect, the processes, versions, and the command (`argv`: the
    arguments train.py was given)."""
    augment, device = data.is_image and not a.no_data_augm, processes.device
    sparsity_examples = min(a.sparsity_examples, len(data.x_train))
    args = vars(a)
    config = {"args": args, "run_name": run_name(args), "identity": identity(args), "augmentation": augment,
              "versions": {**provenance(), **versions},
              "data": {"name": data.name, "train_examples": len(data.x_train), "test_examples": len(data.x_test),
                       "input_shape": list(data.input_shape), "num_classes": data.num_classes,
                       "digest": data.digest},
              "steps_per_epoch": len(data.x_train) // a.batch_size, "processes": processes.world,
              "backend": processes.backend, "memory_format": memory_format(a, device.type),
              "evaluation": {"corr_threshold": a.corr_threshold, "sparsity_examples": sparsity_examples,
                             "sparsity_neurons_per_block": a.sparsity_neurons,
                             "bn_refresh_examples": min(a.bn_refresh_examples, sparsity_examples),
                             "test_examples": len(data.x_test),
                             "batch_size": a.eval_batch_size or EVAL_BATCH[device.type]},
              "random_streams": {"data_order_and_augmentation": a.seed, "initialization": a.seed,
                                 **{k: v + a.seed for k, v in DEEP_OFFSETS.items()}},
              "random_stream_offsets": dict(DEEP_OFFSETS),
              # the script by its place in the repository, not this machine's absolute path
              "command": shlex.join(["python", "deep_nets/train.py", *argv])}
    if processes.backend is not None:
        config["command"] = f"torchrun --nproc_per_node={processes.world} " + config["command"][len("python "):]
    config["iterations"] = a.epochs * config["steps_per_epoch"]
    return config


def memory_format(a, device_type: str) -> str:
    if a.model == "mlp":
        return "contiguous"
    if a.memory_format == "auto":
        return "channels_last" if device_type == "cuda" else "contiguous"
    return a.memory_format


def write_config(config: dict, directory: Path) -> None:
    save_json(config, Path(directory) / "config.json")


def read_config(directory: Path) -> dict:
    """config.json of a run directory; RunDirError naming it when it cannot be read or is not a run's."""
    path = Path(directory) / "config.json"
    try:
        config = load_json(path)
        if not isinstance(config, dict) or not isinstance(config.get("args"), dict) or "iterations" not in config:
            raise ValueError("it holds no 'args' and 'iterations'")
    except (OSError, ValueError) as err:
        raise RunDirError(f"{path} is unreadable ({type(err).__name__}: {err})") from None
    return config


# ---------------------------------------------------------------- metrics.jsonl

def metrics_line(row: dict) -> str:
    """One evaluation as a line of metrics.jsonl (non-finite numbers as null)."""
    return json.dumps(to_jsonable(row), allow_nan=False) + "\n"


def read_metrics(path: Path) -> tuple[list[tuple[str, dict]], str]:
    """The complete lines of metrics.jsonl with their records, and the text after the last newline: a line torn
    by a crash or a full disk while it was appended (empty when none).  A complete line that is not a metrics
    record is damage no reader may guess past: RunDirError naming the line."""
    if not path.exists():
        return [], ""
    try:
        *lines, torn = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise RunDirError(f"cannot read {path} ({err})") from None
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            int(row["iteration"])
        except (ValueError, KeyError, TypeError):
            raise RunDirError(f"{path} line {number} is not a metrics record") from None
        rows.append((line, row))
    return rows, torn


# ---------------------------------------------------------------- run directories as results records

@dataclass
class DeepRun:
    path: Path
    config: dict
    grid: np.ndarray  # iterations at which it evaluates
    curves: dict[str, np.ndarray]  # metric -> values on the grid (NaN where not reached or diverged)
    diverged: bool
    complete: bool  # trained to the end, or diverged

    @property
    def args(self) -> dict:
        return self.config["args"]

    def seed_row(self) -> SeedRow:
        final = {m: float(v[-1]) for m, v in self.curves.items()}
        return SeedRow(seed=int(self.args["seed"]), diverged=self.diverged, curves=self.curves, final=final,
                       extras={})


def read_run(path) -> DeepRun:
    """One run directory as curves on its evaluation grid; a torn last metrics line (a run killed while
    writing) is left out."""
    path = Path(path)
    config = read_config(path)
    rows = [row for _, row in read_metrics(path / "metrics.jsonl")[0]]
    grid = evaluation_grid(int(config["iterations"]), int(config["args"]["eval_iter_freq"]))
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


def schedule_text(args: dict) -> str:
    """What the schedule of `args` does, in the paper's terms: 'η=0.6 for 10%, then ÷50'."""
    schedule = deep_schedule(args["lr_schedule"], args["lr_init"], args["warmup_factor"], args["warmup_exp"])
    lr = f"η={spelled(float(args['lr_init']))}"
    if schedule.cosine:
        return f"{lr}, cosine decay"
    if not schedule.decays:
        return f"{lr} constant"
    (first, by), *later = schedule.decays
    rising = schedule.warmup is not None and float(schedule.warmup.factor(first)) != 1.0
    if rising:
        lr += f" rising to {float(args['lr_init']) * float(schedule.warmup.factor(first)):.3g}"
    text = f"{lr} {'over' if rising else 'for'} {first:.0%}, then ÷{by:.3g}"
    if args["lr_schedule"] == "piecewise":  # the paper's plain step schedule: its second decay is its own
        text += f", ÷{later[0][1]:.3g} more at {later[0][0]:.0%}"
    return text


def run_label(args: dict, varying=()) -> str:
    """A results run's legend: its schedule in words, then the flags in `varying` (those that differ between the
    runs drawn together), e.g. 'η=0.05 for 10%, then ÷10; momentum 0.9, l2_reg 0.0005, augmented'."""
    extra = []
    for flag in varying:
        if flag == "no_data_augm":
            extra.append("not augmented" if args[flag] else "augmented")
        elif flag not in SCHEDULE_FLAGS:
            extra.append(f"{flag} {spelled(args[flag])}")
    return schedule_text(args) + ("; " + ", ".join(extra) if extra else "")


def run_key(args: dict, taken=()) -> str:
    """A collected run's name in claims: its schedule and step ('piecewise_05epochs_lr0p05'), made distinct from
    the keys already `taken` by a suffix ('_2') when other flags set two runs of one schedule apart."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", f"{args['lr_schedule']}_lr{args['lr_init']:g}".replace(".", "p"))
    key, k = base, 2
    while key in taken:
        key, k = f"{base}_{k}", k + 1
    return key


def run_spec(args: dict, iterations: int) -> dict:
    """The schedule (as the toy records hold it) and the iterations of its decays, for the figures."""
    from largestep.config import to_dict

    schedule = deep_schedule(args["lr_schedule"], args["lr_init"], args["warmup_factor"], args["warmup_exp"])
    return {"schedule": to_dict(schedule), "flags": args,
            "decay_iterations": [int(round(f * iterations)) for f, _ in schedule.decays]}


def find_run_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """Directories below root holding config.json and metrics.jsonl (hidden ones, a run being started, left out),
    and a line for each directory that could not be listed."""
    found, unreadable = [], []

    def refused(err: OSError):
        unreadable.append(f"skipped {err.filename}: it cannot be listed ({err.strerror})")
    for directory, subdirs, files in os.walk(root, onerror=refused):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        if "config.json" in files and "metrics.jsonl" in files:
            found.append(Path(directory))
    return found, unreadable


def collect_runs(root, name: str | None = None) -> dict:
    """Every run directory under `root` as a results record (runs = settings over seeds): `plotting` and `claims`
    read it as they read a toy experiment's.  Unfinished run directories are left out and listed under
    "incomplete"; a copy of a run directory already read (same identity and data), an unreadable one and a folder
    that cannot be listed are left out and said so under "skipped"."""
    root = Path(root)
    found, skipped = find_run_dirs(root)
    groups: dict[str, list[DeepRun]] = {}
    incomplete, seen = [], {}
    for path in found:
        try:
            run = read_run(path)
        except RunDirError as err:
            skipped.append(f"skipped {path}: {err}")
            continue
        key = digest([identity(run.args), run.config.get("data", {}).get("digest")])
        if key in seen:
            skipped.append(f"skipped {path}: a copy of {seen[key]} (the same flags, seed {run.args['seed']} and data)")
            continue
        seen[key] = path
        if not run.complete:
            incomplete.append(str(path))
            continue
        groups.setdefault(digest([setting(run.args), run.config.get("data", {}).get("digest")]), []).append(run)
    if not groups and not incomplete:
        why = f" ({len(skipped)} skipped; the first, {skipped[0][len('skipped '):]})" if skipped else ""
        raise RunDirError(f"{root}: no train.py run directories (config.json + metrics.jsonl) below it{why}")
    settings = [setting(members[0].args) for members in groups.values()]
    varying = sorted({k for s in settings for k in s if any(t.get(k) != s.get(k) for t in settings)})
    runs, keys = [], set()
    for members in groups.values():
        members.sort(key=lambda r: r.args["seed"])
        first = members[0]
        key = run_key(first.args, keys)
        keys.add(key)
        runs.append(run_record(key, run_label(identity(first.args), varying),
                               run_spec(first.args, first.config["iterations"]), [m.seed_row() for m in members],
                               first.grid))
    common = {k: v for k, v in settings[0].items() if k not in varying} if settings else {}
    return {"experiment": name or root.name, "family": "deep", "quick": False,
            "config": {"collected_from": str(root), **common},
            "n_seeds": max((len(r["seeds"]) for r in runs), default=0), "runs": runs, "incomplete": incomplete,
            "skipped": skipped}
