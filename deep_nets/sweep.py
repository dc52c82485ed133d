"""Sweeps of deep_nets/train.py runs with submitit: one job per run, on SLURM or on this machine.

    python -m deep_nets.sweep deep_nets/sweeps/paper_cifar10.toml --dry-run            # the runs, one command each
    python -m deep_nets.sweep deep_nets/sweeps/paper_cifar10.toml --executor slurm --partition gpu --time 60
    python -m deep_nets.sweep GRID.toml --executor local         # one run per visible GPU; one after another on CPU
    python -m deep_nets.sweep GRID.toml --collect                # <sweep dir>/<name>.json and its figure

A grid file (TOML, or JSON with the same keys) holds the flags of every run (`[flags]`), lists to cross
(`[cross]`, e.g. seeds) and optionally alternative settings (`[[setting]]` tables: each adds its own flags, its
lists crossed too).  Values are train.py's flags without the dashes (`no_data_augm = true`).  Every run trains
under the sweep directory (`out_dir`, default runs/<grid name>) with --resume: a job that reaches its time limit
or is preempted gets submitit's signal, stops its train.py (which saves a checkpoint), requeues itself and
continues where it stopped; rerunning the sweep skips finished runs.  A bad grid is one line, exit status 2,
and nothing is submitted.
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from largestep.config import ConfigError

from deep_nets.flags import build_parser, check_args

TRAIN_PY = Path(__file__).resolve().parent / "train.py"
SECTIONS = {"out_dir", "flags", "cross", "setting"}
SWEEP_OWNS = {"out_dir", "resume"}  # set by the sweep for every run


def read_grid(path: Path) -> dict:
    try:
        text = path.read_text()
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
    return grid


def expand(grid: dict, where: str) -> list[dict]:
    """The runs of a grid: its flags, each setting's flags and every combination of the lists."""
    known = {a.dest for a in build_parser()._actions} - {"help"}
    settings = grid.get("setting", [{}])
    if not isinstance(settings, list) or not settings or not all(isinstance(s, dict) for s in settings):
        raise ConfigError(f"{where}: [[setting]] must be one or more tables of flags")
    for name, table in [("flags", grid.get("flags", {})), ("cross", grid.get("cross", {}))] + \
                       [(f"setting {k + 1}", s) for k, s in enumerate(settings)]:
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
    runs = []
    for setting in settings:
        fixed = {**grid.get("flags", {}), **{k: v for k, v in setting.items() if not isinstance(v, list)}}
        lists = {**grid.get("cross", {}), **{k: v for k, v in setting.items() if isinstance(v, list)}}
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


def check_runs(runs: list[dict], out_dir: Path, where: str) -> list[list[str]]:
    """Each run's train.py arguments, parsed and checked as train.py would; the first bad one is a ConfigError."""
    parser = build_parser()

    def refuse(message):
        raise ConfigError(message)
    parser.error = refuse
    argvs, names = [], {}
    for k, run in enumerate(runs, start=1):
        argv = flag_argv(run) + [f"--out_dir={out_dir}", "--resume"]
        try:
            args = parser.parse_args(argv)
            check_args(args)
        except ConfigError as err:
            raise ConfigError(f"{where}: run {k} ({' '.join(flag_argv(run))}): {err}") from None
        key = json.dumps(vars(args), sort_keys=True)
        if key in names:
            raise ConfigError(f"{where}: runs {names[key]} and {k} are the same run: make the lists distinct")
        names[key] = k
        argvs.append(argv)
    return argvs


class TrainJob:
    """One train.py run as a submitit job: checkpointable, so that the timeout/preemption signal stops train.py
    (it saves a checkpoint), and the job is requeued with the same command, which resumes."""

    def __init__(self, argv: list[str], gpus: int = 1):
        self.argv, self.gpus, self.process = argv, gpus, None

    def command(self, shown: bool = False) -> list[str]:
        """What the job runs; `shown`: as a user would type it in the repository."""
        train_py = "deep_nets/train.py" if shown else str(TRAIN_PY)
        if self.gpus > 1:
            launcher = ["torchrun"] if shown else [sys.executable, "-m", "torch.distributed.run"]
            return [*launcher, "--standalone", f"--nproc_per_node={self.gpus}", train_py, *self.argv]
        return ["python" if shown else sys.executable, train_py, *self.argv]

    def __call__(self) -> int:
        self.process = subprocess.Popen(self.command())
        code = self.process.wait()
        if code not in (0, 1):  # 1: the run diverged, which is a result
            raise RuntimeError(f"train.py exited with status {code} ({shlex.join(self.argv)}); "
                               "if it was stopped by a signal, rerun the sweep: it resumes and skips finished runs")
        return code

    def checkpoint(self):
        from submitit.helpers import DelayedSubmission

        if self.process is not None:  # train.py finishes its step and saves a checkpoint
            stop_and_wait(self.process.pid)
        return DelayedSubmission(TrainJob(self.argv, self.gpus))

    def __getstate__(self):
        return {"argv": self.argv, "gpus": self.gpus, "process": None}


def stop_and_wait(pid: int) -> None:
    """SIGTERM to `pid`, then wait for it to exit.  Runs inside submitit's signal handler, which interrupts
    __call__'s Popen.wait while that holds the Popen's lock: so by the process id, not through the Popen."""
    try:
        os.kill(pid, signal.SIGTERM)
        while os.waitpid(pid, os.WNOHANG) == (0, 0):
            time.sleep(0.1)
    except (ProcessLookupError, ChildProcessError):  # already gone, or reaped
        pass


def executor_for(a, folder: Path, slots: int):
    import submitit

    if a.executor == "slurm":
        try:
            executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=a.max_requeues)
        except RuntimeError as err:  # no srun on this machine
            raise ConfigError(f"--executor slurm: {err} (run on a login node of the cluster, or --executor local)") from None
        extra = {"account": a.account} if a.account else {}
        executor.update_parameters(partition=a.partition, time=a.time, gpus_per_node=a.gpus, ntasks_per_node=1,
                                   cpus_per_task=a.cpus_per_job, signal_delay_s=120, job_name="largestep", **extra)
    else:
        executor = submitit.LocalExecutor(folder=folder, max_num_timeout=a.max_requeues)
        executor.update_parameters(timeout_min=a.time, signal_delay_s=60, gpus_per_node=1 if slots else 0)
    return executor


def run_local(executor, jobs: list[TrainJob], gpus: int) -> list[str]:
    """One job per visible GPU at a time (one at a time on CPU); the failures, as lines."""
    pending, running, failures = list(enumerate(jobs)), {}, []
    slots = list(range(gpus)) or [None]
    while pending or running:
        for slot in [s for s in slots if s not in running]:
            if pending:
                k, job = pending.pop(0)
                if slot is not None:
                    executor.update_parameters(visible_gpus=(slot,))
                running[slot] = (k, executor.submit(job))
                print(f"run {k + 1}/{len(jobs)} started (job {running[slot][1].job_id}"
                      + (f", GPU {slot})" if slot is not None else ")"), flush=True)
        time.sleep(0.5)
        for slot, (k, handle) in list(running.items()):
            if handle.done():
                del running[slot]
                try:
                    handle.result()
                    print(f"run {k + 1}/{len(jobs)} finished", flush=True)
                except Exception as err:
                    failures.append(f"run {k + 1}: {str(err).strip().splitlines()[-1]} (log: {handle.paths.stdout})")
    return failures


def collect(out_dir: Path, name: str) -> int:
    from largestep import experiments
    from largestep.deep_runs import RunDirError, collect_runs

    try:
        results = collect_runs(out_dir, name)
    except RunDirError as err:
        raise ConfigError(str(err)) from None
    if not results["runs"]:
        raise ConfigError(f"{out_dir}: no run has finished yet ({len(results['incomplete'])} incomplete)")
    try:
        written = experiments.save(results, out_dir)
    except OSError as err:
        raise ConfigError(f"cannot write {name}'s results into {out_dir} ({err.filename or out_dir}: "
                          f"{err.strerror or err})") from None
    print(f"{written[0]}: {len(results['runs'])} runs, {len(results['incomplete'])} incomplete left out; "
          f"wrote {', '.join(map(str, written[1:]))}")
    return 0


def build_sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m deep_nets.sweep", description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("grid", help="grid file (.toml, or .json)")
    p.add_argument("--executor", choices=("slurm", "local"), default="local", help="where the jobs run")
    p.add_argument("--dry-run", action="store_true", help="print one train.py command per run; submit nothing")
    p.add_argument("--collect", action="store_true", help="turn the sweep directory into one results file and figure")
    p.add_argument("--partition", default=None, help="SLURM partition")
    p.add_argument("--account", default=None, help="SLURM account")
    p.add_argument("--gpus", type=int, default=1, help="GPUs per job (SLURM; >1 runs train.py under torchrun)")
    p.add_argument("--cpus-per-job", type=int, default=8, help="CPU cores per job (SLURM)")
    p.add_argument("--time", type=int, default=240, help="time limit of a job in minutes; a job that reaches it "
                                                         "saves, requeues itself and resumes")
    p.add_argument("--max-requeues", type=int, default=20, help="requeues allowed per job (time limits and preemptions)")
    return p


def main(argv=None) -> int:
    a = build_sweep_parser().parse_args(argv)
    try:
        path = Path(a.grid)
        grid = read_grid(path)
        out_dir = Path(grid.get("out_dir", Path("runs") / path.stem))
        if a.collect:
            return collect(out_dir, path.stem)
        for name in ("gpus", "cpus_per_job", "time", "max_requeues"):
            if getattr(a, name) < (0 if name == "max_requeues" else 1):
                raise ConfigError(f"--{name.replace('_', '-')} must be >= {0 if name == 'max_requeues' else 1}")
        jobs = [TrainJob(argv, a.gpus) for argv in check_runs(expand(grid, str(path)), out_dir, str(path))]
        if a.dry_run:
            for job in jobs:
                print(shlex.join(job.command(shown=True)))
            print(f"# {len(jobs)} runs into {out_dir}/ ({a.executor} executor)", file=sys.stderr)
            return 0
        import torch

        gpus = torch.cuda.device_count() if a.executor == "local" else a.gpus
        if a.executor == "local" and a.gpus > 1:
            raise ConfigError("--gpus applies to SLURM jobs; the local executor runs one job per visible GPU")
        executor = executor_for(a, out_dir / "submitit", gpus)
        out_dir.mkdir(parents=True, exist_ok=True)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if a.executor == "slurm":
        with executor.batch():
            handles = [executor.submit(job) for job in jobs]
        print(f"submitted {len(handles)} jobs (array {handles[0].job_id.split('_')[0]}) into {out_dir}/; when they "
              f"finish: python -m deep_nets.sweep {a.grid} --collect")
        return 0
    failures = run_local(executor, jobs, gpus)
    for line in failures:
        print(f"failed: {line}", file=sys.stderr)
    if len(failures) == len(jobs):
        return 1
    try:
        return collect(out_dir, path.stem) or (1 if failures else 0)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
