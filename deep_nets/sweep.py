"""Sweeps of deep_nets/train.py runs: a grid file becomes run directories, trained on this machine or on SLURM.

    python -m deep_nets.sweep GRID.toml --dry-run        # the runs, one train.py command each, and how many
    python -m deep_nets.sweep GRID.toml --yes            # here: one run per visible GPU, or --jobs at a time on CPU
    python -m deep_nets.sweep GRID.toml --executor slurm --partition gpu --time 60
    python -m deep_nets.sweep GRID.toml --collect        # <sweep dir>/<grid name>.json and its figures

A grid file (TOML, or JSON with the same keys) holds the flags of every run (`[flags]`), lists to cross
(`[cross]`, e.g. seeds) and optionally alternative settings (`[[setting]]` tables: each adds its own flags, its
lists crossed too).  Values are train.py's flags without the dashes (`no_data_augm = true`).  Every run trains
under the sweep directory (`out_dir`, default runs/<grid name>) with --resume, in the run directory that
deep_nets/runs.py names from its flags: rerunning a sweep skips finished runs and resumes the others.  A bad grid
(train.py would refuse a run, two runs would share a directory, more runs than --max-runs) is one line, exit
status 2, and nothing is started.  On SLURM a job that reaches its time limit or is preempted gets submitit's
signal, stops its train.py (which saves a checkpoint), requeues itself and continues where it stopped.
Runs are started by deep_nets/launch.py (`run_here` on this machine, `TrainJob` on SLURM), which the deep study
(largestep.experiments.deep) shares; this module is the command around it: grids, confirmation, collecting.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import shlex
import sys
from pathlib import Path

from largestep.config import ConfigError
from largestep.results import is_plain_name, sigterm_as_interrupt

from deep_nets.flags import build_parser, parse
from deep_nets.launch import Outcome, PlannedRun, TrainJob, run_here
from deep_nets.runs import RunDirError, collect_runs, run_dir
SECTIONS = {"out_dir", "flags", "cross", "setting", "estimate"}
SWEEP_OWNS = {"out_dir", "resume"}  # set by the sweep for every run
MAX_RUNS = 2000  # a grid larger than this is refused unless --max-runs allows it (a typo can cross lists into 10**6)
CONFIRM_ABOVE = 4  # starting more runs than this on this machine asks for --yes


# ---------------------------------------------------------------- grids

def read_grid(path: Path) -> dict:
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ConfigError(f"grid file {path} is not text: write the grid as TOML or JSON") from None
    except OSError as err:
        raise ConfigError(f"cannot read grid file {path}: {err.strerror or err}") from None
    try:
        if path.suffix == ".json":
            grid = json.loads(text)
        else:
            try:
                import tomllib
            except ImportError:  # Python 3.10
                raise ConfigError(f"{path}: TOML grids need Python 3.11 (tomllib); write the grid as JSON") from None
            grid = tomllib.loads(text)
    except ConfigError:
        raise
    except ValueError as err:
        raise ConfigError(f"{path} is not valid {'JSON' if path.suffix == '.json' else 'TOML'}: {err}") from None
    if not isinstance(grid, dict) or set(grid) - SECTIONS:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(set(grid) - SECTIONS) if isinstance(grid, dict) else grid!r}"
                          f" (a grid has {', '.join(sorted(SECTIONS))})")
    if "out_dir" in grid and not (isinstance(grid["out_dir"], str) and grid["out_dir"].strip()):
        raise ConfigError(f"{path}: out_dir must be a directory name in quotes, got {grid['out_dir']!r}")
    return grid


def sweep_name(path: Path) -> str:
    """The grid file's name without its suffix: it names the sweep's results file and figures."""
    if not is_plain_name(path.stem):
        raise ConfigError(f"grid file name {path.stem!r} cannot name the sweep's results file ({path.stem}.json): "
                          "rename the file with letters, digits, '_', '-' and '.' only")
    return path.stem


def settings_of(grid: dict, where: str) -> list[tuple[dict, dict]]:
    """Each setting's fixed flags and its lists to cross, checked against train.py's flags."""
    known = {a.dest for a in build_parser()._actions} - {"help"}
    settings = grid.get("setting", [{}])
    if not isinstance(settings, list) or not settings or not all(isinstance(s, dict) for s in settings):
        raise ConfigError(f"{where}: [[setting]] must be one or more tables of flags")
    tables = [("flags", grid.get("flags", {})), ("cross", grid.get("cross", {}))] + \
             [(f"setting {k + 1}", s) for k, s in enumerate(settings)]
    for name, table in tables:
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: [{name}] must be a table of flags")
        for key, value in table.items():
            if key not in known:
                raise ConfigError(f"{where}: [{name}] {key}: train.py has no flag --{key} (see python deep_nets/train.py --help)")
            if key in SWEEP_OWNS:
                raise ConfigError(f"{where}: [{name}] {key}: the sweep sets --{key} itself (use the grid's out_dir)")
            if isinstance(value, list) and not value:
                raise ConfigError(f"{where}: [{name}] {key} is an empty list: give at least one value")
    for key, value in grid.get("cross", {}).items():
        if not isinstance(value, list):
            raise ConfigError(f"{where}: [cross] {key} must be a list of values, got {value!r}")
    if not any(table for _, table in tables):
        raise ConfigError(f"{where} lists no flags: an empty grid would be one run of train.py's defaults; put the "
                          "flags under [flags] (see deep_nets/sweeps/paper_cifar10.toml)")
    return [({**grid.get("flags", {}), **{k: v for k, v in s.items() if not isinstance(v, list)}},
             {**grid.get("cross", {}), **{k: v for k, v in s.items() if isinstance(v, list)}}) for s in settings]


def count_runs(grid: dict, where: str) -> list[int]:
    """The runs of each setting (the product of its lists' lengths), counted before any is made."""
    return [math.prod(len(values) for values in lists.values()) for _, lists in settings_of(grid, where)]


def expand(grid: dict, where: str, max_runs: int = MAX_RUNS) -> list[dict]:
    """The runs of a grid: its flags, each setting's flags and every combination of the lists."""
    counts = count_runs(grid, where)
    if sum(counts) > max_runs:
        split = f" ({' + '.join(f'{c:,}' for c in counts)} over its {len(counts)} settings)" if len(counts) > 1 else ""
        raise ConfigError(f"{where}: {sum(counts):,} runs{split}, more than --max-runs {max_runs:,}: check the lists, "
                          f"or pass --max-runs {sum(counts)}")
    runs = []
    for fixed, lists in settings_of(grid, where):
        for combo in itertools.product(*lists.values()):
            runs.append({**fixed, **dict(zip(lists, combo))})
    return runs


def flag_argv(run: dict) -> list[str]:
    argv = []
    for key, value in run.items():
        if value is True:
            argv.append(f"--{key}")
        elif value is not False:
            argv.append(f"--{key}={value}")
    return argv


def plan(runs: list[dict], out_dir: Path, where: str) -> list[PlannedRun]:
    """Each run's train.py arguments, checked as train.py checks them, and its run directory; a ConfigError for
    the first bad run, or for two runs that would train one run directory."""
    planned, seen = [], {}
    for k, run in enumerate(runs, start=1):
        argv = flag_argv(run) + [f"--out_dir={out_dir}", "--resume"]
        try:
            args = vars(parse(argv))
        except ConfigError as err:
            raise ConfigError(f"{where}: run {k} ({' '.join(flag_argv(run))}): {err}") from None
        directory = run_dir(args)
        if directory in seen:
            first, other = seen[directory]
            differ = sorted(f for f in args if args[f] != other[f])
            why = (f"they differ only in {', '.join('--' + f for f in differ)}, which "
                   f"{'does' if len(differ) == 1 else 'do'} not change what a run computes" if differ
                   else "they are the same run")
            raise ConfigError(f"{where}: runs {first} and {k} would train one run directory, {directory} ({why}): "
                              "make the lists distinct")
        seen[directory] = (k, args)
        planned.append(PlannedRun(argv, directory))
    return planned


def submit_slurm(a, runs: list[PlannedRun], out_dir: Path) -> int:
    import submitit

    try:
        executor = submitit.SlurmExecutor(folder=out_dir / "submitit", max_num_timeout=a.max_requeues)
    except RuntimeError as err:  # no srun on this machine
        raise ConfigError(f"--executor slurm: {err} (run on a login node of the cluster, or --executor local)") from None
    extra = {"account": a.account} if a.account else {}
    executor.update_parameters(partition=a.partition, time=a.time, gpus_per_node=a.gpus, ntasks_per_node=1,
                               cpus_per_task=a.cpus_per_job, signal_delay_s=120, job_name="largestep", **extra)
    out_dir.mkdir(parents=True, exist_ok=True)
    with executor.batch():
        handles = [executor.submit(TrainJob(run.argv, a.gpus)) for run in runs]
    print(f"submitted {len(handles)} jobs (array {handles[0].job_id.split('_')[0]}) into {out_dir}/; when they "
          f"finish: python -m deep_nets.sweep {a.grid} --collect")
    return 0


# ---------------------------------------------------------------- the command

def collect(out_dir: Path, name: str) -> int:
    """<out_dir>/<name>.json from the run directories below out_dir, and its figures, as one set."""
    from largestep import experiments

    from largestep.experiments import phase

    try:
        results = collect_runs(out_dir, name)
    except RunDirError as err:
        raise ConfigError(str(err)) from None
    results = phase.from_collected(results) or results  # a grid of lr_init x untilF_thenS: its phase map
    for line in results["skipped"]:
        print(line)
    if not results["runs"]:
        raise ConfigError(f"{out_dir}: no run has finished yet ({len(results['incomplete'])} incomplete)")
    try:
        written = experiments.save(results, out_dir)
    except OSError as err:
        raise ConfigError(f"cannot write {name}'s results into {out_dir} ({err.filename or out_dir}: "
                          f"{err.strerror or err}): free some space or fix permissions, then --collect again") from None
    print(f"{written[0]}: {len(results['runs'])} runs, {len(results['incomplete'])} unfinished run directories left "
          f"out, {len(results['skipped'])} skipped; wrote {', '.join(map(str, written[1:]))}")
    return 0


def gpu_hours(estimate: dict, runs: list[PlannedRun], where: str) -> str:
    """'# 70 runs x 19,500 iterations x 0.05 s = 19.0 GPU-hours (...)': the grid's GPU time from a step time,
    the grid's [estimate] step_seconds (per iteration, evaluations included), and where that number comes from."""
    step, source = estimate.get("step_seconds"), estimate.get("source")
    if not isinstance(step, (int, float)) or not step > 0 or not isinstance(source, str) or not source.strip():
        raise ConfigError(f"{where}: [estimate] needs step_seconds (> 0, seconds per iteration) and source (where "
                          "that number comes from: measured where, or an assumption)")
    iterations = 0
    for run in runs:
        a = parse(run.argv)
        per_epoch = {"cifar10": 50_000, "cifar100": 50_000}.get(a.dataset)
        if per_epoch is None:
            raise ConfigError(f"{where}: [estimate] counts iterations of CIFAR runs only, not {a.dataset}")
        iterations += a.epochs * (per_epoch // a.batch_size)
    return (f"# {len(runs)} runs, {iterations:,} iterations x {step:g} s = {iterations * step / 3600:,.1f} GPU-hours "
            f"({source})")


def build_sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deep_nets.sweep", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("grid", help="grid file (.toml, or .json)")
    p.add_argument("--executor", choices=("slurm", "local"), default="local",
                   help="where the runs train: SLURM jobs, or this machine")
    p.add_argument("--dry-run", action="store_true", help="print one train.py command per run, and how many; "
                                                          "start nothing")
    p.add_argument("--yes", action="store_true", help=f"start more than {CONFIRM_ABOVE} runs on this machine")
    p.add_argument("--collect", action="store_true", help="turn the sweep directory into one results file and figure")
    p.add_argument("--max-runs", type=int, default=MAX_RUNS, help="refuse a grid of more runs than this")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time on this machine's CPU (on GPUs: one per GPU)")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per job (SLURM; >1 runs train.py under torchrun)")
    p.add_argument("--cpus-per-job", type=int, default=8, help="CPU cores per job (SLURM)")
    p.add_argument("--time", type=int, default=240, help="time limit of a SLURM job in minutes; a job that reaches "
                                                         "it saves, requeues itself and resumes")
    p.add_argument("--max-requeues", type=int, default=20, help="requeues allowed per job (time limits and preemptions)")
    return p


def main(argv=None) -> int:
    a = build_sweep_parser().parse_args(argv)
    try:
        path = Path(a.grid)
        grid = read_grid(path)
        name = sweep_name(path)
        out_dir = Path(grid.get("out_dir", Path("runs") / name))
        if a.collect:
            return collect(out_dir, name)
        for flag, least in (("gpus", 1), ("cpus_per_job", 1), ("time", 1), ("max_requeues", 0), ("jobs", 1),
                            ("max_runs", 1)):
            if getattr(a, flag) < least:
                raise ConfigError(f"--{flag.replace('_', '-')} must be >= {least}, got {getattr(a, flag)}")
        runs = plan(expand(grid, str(path), a.max_runs), out_dir, str(path))
        if a.dry_run:
            for run in runs:
                print(shlex.join(TrainJob(run.argv, a.gpus if a.executor == "slurm" else 1).command(shown=True)))
            print(f"# {len(runs)} runs into {out_dir}/ ({a.executor} executor)", file=sys.stderr)
            if "estimate" in grid:
                print(gpu_hours(grid["estimate"], runs, str(path)), file=sys.stderr)
            return 0
        if a.executor == "slurm":
            return submit_slurm(a, runs, out_dir)
        if a.gpus != 1:
            raise ConfigError("--gpus applies to SLURM jobs; on this machine each run gets one visible GPU")
        if len(runs) > CONFIRM_ABOVE and not a.yes:
            raise ConfigError(f"{path}: {len(runs)} runs of train.py on this machine: pass --yes to start them "
                              "(--dry-run lists them first)")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    with sigterm_as_interrupt():
        return sweep_here(runs, out_dir, name, a.jobs)


def sweep_here(runs: list[PlannedRun], out_dir: Path, name: str, jobs: int) -> int:
    import torch

    gpus = torch.cuda.device_count()

    def said(k, outcome: Outcome):
        what = ("failed: " + outcome.reason if outcome.failed else
                ("already finished" if outcome.reused else "diverged" if outcome.status == 1 else "finished"))
        print(f"run {k + 1}/{len(runs)} {what} ({runs[k].directory}; log {outcome.log})", flush=True)
    print(f"{len(runs)} runs into {out_dir}/, {gpus or jobs} at a time ({f'{gpus} GPUs' if gpus else 'CPU'})",
          flush=True)
    try:
        outcomes = run_here(runs, jobs, out_dir / "logs", gpus, on_done=said)
    except KeyboardInterrupt:
        print("interrupted: the runs saved checkpoints; rerun the sweep to resume them", file=sys.stderr)
        return 130
    failures = [k for k, outcome in enumerate(outcomes) if outcome.failed]
    for k in failures:
        print(f"failed: run {k + 1}: {outcomes[k].reason} (log: {outcomes[k].log})", file=sys.stderr)
    if len(failures) == len(runs):
        return 1
    try:
        return collect(out_dir, name) or (1 if failures else 0)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
