"""How a deep_nets/train.py run is started: on this machine, several at a time (`run_here`), or as a SLURM job
(`TrainJob`, submitted by the sweep).  Used by the sweep command (`deep_nets.sweep`) and by the deep study
(`largestep.experiments.deep`); it knows train.py's arguments and run directories, nothing of grids or results.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from deep_nets.runs import RunDirError, read_run

TRAIN_PY = Path(__file__).resolve().parent / "train.py"


@dataclass
class PlannedRun:
    argv: list[str]  # train.py's arguments
    directory: Path  # its run directory


# ---------------------------------------------------------------- runs on this machine

@dataclass
class Outcome:
    status: int  # train.py's exit status: 0 done, 1 diverged, 2 refused, 128+N (or -N) stopped by signal N
    reused: bool  # the run directory was finished before: train.py only said so
    log: Path
    reason: str = ""  # why it failed: the last 'error: ...' line of its log, or the signal

    @property
    def failed(self) -> bool:
        return self.status not in (0, 1)


def finished(directory: Path) -> bool:
    try:
        return read_run(directory).complete
    except RunDirError:
        return False


def last_error(log: Path, status: int) -> str:
    """Why a run failed, from its log: train.py's last 'error: ...' line, else the signal that stopped it."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    errors = [line[len("error: "):] for line in lines if line.startswith("error: ")]
    if errors:
        return errors[-1]
    if status < 0 or status > 128:
        number = -status if status < 0 else status - 128
        try:
            return f"stopped by {signal.Signals(number).name}"
        except ValueError:
            return f"stopped by signal {number}"
    tail = [line for line in lines if line.strip()][-1:]
    return f"exit status {status}" + (f": {tail[0].strip()[:200]}" if tail else "")


def _into_own_files(log: str, cwd: str, env: dict) -> None:
    """A process forked from the warm server takes its run's directory, environment and log."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _train_here(argv: list[str], log: str, cwd: str, env: dict) -> None:
    """The body of one run's process."""
    _into_own_files(log, cwd, env)
    from deep_nets import train

    sys.exit(train.main(argv))


def _train_group_here(argvs: list[list[str]], log: str, cwd: str, env: dict) -> None:
    """The body of one group's process (deep_nets.group): its runs, one log."""
    _into_own_files(log, cwd, env)
    from deep_nets import group

    sys.exit(group.main(argvs))


def groups_of(items: list, size: int) -> list[list]:
    """`items` dealt into ceil(len / size) groups of at most `size`, round robin, so that the runs of a grid that
    end early (diverged) spread over the groups."""
    count = max(1, -(-len(items) // max(1, size)))
    return [items[g::count] for g in range(count) if items[g::count]]


def warm_context():
    """Processes forked from one server that has imported torch once: on a CPU a run's process then starts in a
    tenth of a second instead of 4-5 s (torch, and the torch._dynamo that its optimizer imports), which for the
    small runs of a CPU study is most of their time.  Every run is still a process of its own."""
    import multiprocessing

    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["deep_nets.train", "deep_nets.loop", "torch._dynamo"])
    return context


def run_here(runs: list[PlannedRun], slots: int, logs: Path, gpus: int = 0, on_done=None,
             per_process: int = 1) -> list[Outcome]:
    """Train `runs` on this machine, `slots` at a time (with `gpus`, one per GPU, each seeing only its own), each
    run one process writing its log to logs/<exp_name>/<run name>.log; the outcomes in the order of `runs`.
    per_process > 1 (CPU, small models: deep_nets.group): up to that many runs share a process and train as one
    group, logging to logs/<exp_name>/group-<its first run's name>.log.  on_done(k, outcome) is called as run k
    ends.  Ctrl-C or SIGTERM stops the running ones (each saves a checkpoint: rerun to resume) and is raised
    again."""
    context = None if gpus else warm_context()
    grouped = per_process > 1 and not gpus
    outcomes: list[Outcome | None] = [None] * len(runs)
    todo = list(range(len(runs)))
    if grouped:  # a finished run needs no process (nor a group's set-up): its directory says how it ended
        for k in [k for k in todo if finished(runs[k].directory)]:
            outcomes[k] = Outcome(1 if _diverged(runs[k].directory) else 0, True, logs)
            todo.remove(k)
            if on_done is not None:
                on_done(k, outcomes[k])
    pending = groups_of(todo, per_process) if grouped else [[k] for k in todo]
    running = {}  # slot -> (run indices, process, reused per run, log)
    free = list(range(gpus)) if gpus else list(range(slots))
    try:
        while pending or running:
            while pending and free:
                ks, slot = pending.pop(0), free.pop(0)
                first = runs[ks[0]].directory
                log = logs / first.parent.name / f"{'group-' if grouped else ''}{first.name}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                env = {**os.environ, **({"CUDA_VISIBLE_DEVICES": str(slot)} if gpus else {})}
                reused = [finished(runs[k].directory) for k in ks]
                if context is None:  # CUDA does not survive a fork: a fresh interpreter per run
                    with open(log, "ab") as f:
                        process = subprocess.Popen([sys.executable, str(TRAIN_PY), *runs[ks[0]].argv], stdout=f,
                                                   stderr=subprocess.STDOUT, env=env)
                elif grouped:
                    process = context.Process(target=_train_group_here,
                                              args=([runs[k].argv for k in ks], str(log), os.getcwd(), env))
                    process.start()
                else:
                    process = context.Process(target=_train_here, args=(runs[ks[0]].argv, str(log), os.getcwd(), env))
                    process.start()
                running[slot] = (ks, process, reused, log)
            time.sleep(0.05)
            for slot, (ks, process, reused, log) in list(running.items()):
                status = process.poll() if isinstance(process, subprocess.Popen) else process.exitcode
                if status is None:
                    continue
                del running[slot]
                free.append(slot)
                for k, was_done in zip(ks, reused):
                    # a group's process ends 0 when each of its runs finished or diverged (its directory says
                    # which); 1 is no run's "diverged" there but a process that died before its log began
                    own = status if not grouped else (1 if _diverged(runs[k].directory) else 0) if status == 0 \
                        else 3 if status == 1 else status
                    outcome = Outcome(own, was_done and own in (0, 1), log)
                    if outcome.failed:
                        outcome.reason = last_error(log, status)
                    outcomes[k] = outcome
                    if on_done is not None:
                        on_done(k, outcome)
    finally:
        stop_all([process for _, process, _, _ in running.values()])
    return outcomes


def _diverged(directory: Path) -> bool:
    try:
        return read_run(directory).diverged
    except RunDirError:
        return False


def stop_all(processes: list) -> None:
    """SIGTERM to the runs still going (each finishes its step and saves a checkpoint), then wait for them."""
    for process in processes:
        try:
            os.kill(process.pid, signal.SIGTERM)
        except (ProcessLookupError, TypeError):
            pass
    for process in processes:
        if isinstance(process, subprocess.Popen):
            process.wait()
        else:
            process.join()


# ---------------------------------------------------------------- SLURM

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
            import submitit

            raise RuntimeError(f"train.py exited with status {code}: "
                               f"{last_error(Path(submitit.JobEnvironment().paths.stderr), code)}")
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
