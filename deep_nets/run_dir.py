"""The run directory of `train.py`: one process at a time (a lock file beside it), checkpoints that are ours and
whole, metrics lines torn by a crash, and errors that say what to do (RunError, exit status 2)."""
from __future__ import annotations

import fcntl
import json
import math
import os
import shutil
from pathlib import Path

import torch

from largestep.config import ConfigError
from largestep.results import atomic_write, load_json, save_json

from deep_nets.flags import RESUME_FREE, build_parser

CHECKPOINT_KEYS = {"model", "ema", "optimizer", "stream", "iteration", "interval_loss_sum", "interval_steps"}
RESUME_HINT = "continue with --resume (the last checkpoint is intact)"


class RunError(Exception):
    """The run directory cannot be used as asked (in use, corrupt, unwritable); the message says what to do."""


class RunLock:
    """An exclusive flock on <out_dir>/<exp_name>/.<run name>.lock for the whole life of a run, so that two
    processes never write one run directory; the OS drops it when its process dies, even by SIGKILL.
    The file holds the holder's PID, which a refused process names."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.fd = run_dir, run_dir.parent / f".{run_dir.name}.lock", None

    def acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "that has not yet written its PID"
                os.close(fd)
                raise RunError(f"run directory {self.run_dir} is in use by process {holder}: wait for it to "
                               "finish (or stop it), then continue with --resume") from None
            try:  # the previous holder may have removed the file after we opened it: lock the file on disk
                current = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:
                break
            os.close(fd)
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: give the lock back, leave no file
            self.release()
            raise

    def release(self) -> None:
        if self.fd is not None:
            try:
                os.unlink(self.path)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None


def make_dirs(path: Path, what: str) -> list[Path]:
    """mkdir -p that returns the directories it created (to remove them again if the run never starts)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    try:
        for d in reversed(missing):
            d.mkdir()
    except OSError as err:
        raise RunError(f"cannot write to {what} ({err.filename}: {err.strerror})") from None
    return missing


def started(run_dir: Path) -> bool:
    metrics = run_dir / "metrics.jsonl"
    return (run_dir / "checkpoint.pt").exists() or (metrics.exists() and metrics.stat().st_size > 0)


def start_over(run_dir: Path) -> str:
    return f"it cannot be resumed: move {run_dir} away (or delete it) and start the run again"


def short_reason(err: Exception) -> str:
    """The exception's type and first sentence, for a one-line message."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or ["empty or truncated"]
    first = lines[0] + (" " + lines[1] if lines[0].endswith(":") and len(lines) > 1 else "")
    return f"{type(err).__name__}: {first.split('. ')[0][:200]}"


def load_checkpoint(path: Path) -> dict:
    """The checkpoint at path; RunError, naming the file, when it is truncated, empty or not ours."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = CHECKPOINT_KEYS - set(state) if isinstance(state, dict) else CHECKPOINT_KEYS
        if missing:
            raise ValueError(f"entries {sorted(missing)} are missing")
    except Exception as err:  # whatever the bytes are, the answer is the same: this file cannot be resumed from
        raise RunError(f"{path} is not a readable checkpoint ({short_reason(err)}); "
                       f"{start_over(path.parent)}") from None
    return state


def metrics_up_to(path: Path, iteration: int) -> list[str]:
    """The lines of metrics.jsonl up to `iteration` (later ones are recomputed on resume).

    A last line without its newline was torn by a crash or a full disk while being appended: dropped, and
    said so.  A complete line that is not a metrics record is damage we cannot repair: RunError.
    """
    if not path.exists():
        return []
    try:
        *lines, torn = path.read_text().split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise RunError(f"cannot read {path} ({err}); {start_over(path.parent)}") from None
    if torn:
        print(f"{path}: dropped an incomplete last line ({len(torn)} characters) left by an interrupted write; "
              "it is recomputed", flush=True)
    kept = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row_iteration = json.loads(line)["iteration"]
        except (ValueError, KeyError, TypeError):
            raise RunError(f"{path} line {number} is not a metrics record: repair or delete that line "
                           "(with every line after it), then --resume") from None
        if row_iteration <= iteration:
            kept.append(line)
    return kept


def cannot_write(path, err: OSError, then: str) -> RunError:
    return RunError(f"cannot write {err.filename or path} ({err.strerror or err}): free some space or fix "
                    f"permissions, then {then}")


def prepare_run_dir(a, config: dict) -> tuple[Path, dict | None]:
    """The run directory and its checkpoint when resuming (None: a fresh run); the caller holds its lock."""
    run_dir = Path(a.out_dir) / a.exp_name / config["run_name"]
    ckpt_path = run_dir / "checkpoint.pt"
    if not started(run_dir):
        return run_dir, None
    if not a.resume:
        raise ConfigError(f"run directory {run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --exp_name / --out_dir")
    if (run_dir / "config.json").exists():
        try:
            old = load_json(run_dir / "config.json")["args"]
        except Exception as err:
            raise RunError(f"{run_dir / 'config.json'} is unreadable ({type(err).__name__}: {err}); "
                           f"{start_over(run_dir)}") from None
        defaults = vars(build_parser().parse_args([]))  # a flag added since the run started had its default
        changed = sorted(k for k in config["args"] if k not in RESUME_FREE and old.get(k, defaults[k]) != config["args"][k])
        if changed:
            raise ConfigError(f"--resume with different settings than the run in {run_dir}: {', '.join(changed)}")
    if not ckpt_path.exists():  # checkpoints are not committed: a finished run may come without one
        rows = metrics_up_to(run_dir / "metrics.jsonl", math.inf)
        last = json.loads(rows[-1]) if rows else {}
        if last.get("iteration", -1) >= config["iterations"] or last.get("diverged"):
            return run_dir, {"iteration": last["iteration"], "diverged": bool(last.get("diverged"))}
        raise RunError(f"{run_dir} holds metrics of an unfinished run but no checkpoint.pt; {start_over(run_dir)}")
    return run_dir, load_checkpoint(ckpt_path)


def resume(training, checkpoint: dict, run_dir: Path, config: dict) -> None:
    """Restore `checkpoint` and drop the metrics lines a killed run wrote after it (they will be recomputed)."""
    try:
        training.restore(checkpoint)
    except Exception as err:  # another model's or data set's state: say so instead of a state-dict dump
        raise RunError(f"{run_dir / 'checkpoint.pt'} does not fit this run ({short_reason(err)}); "
                       f"{start_over(run_dir)}") from None
    if not training.processes.is_main:
        return
    kept = metrics_up_to(run_dir / "metrics.jsonl", training.iteration)
    try:
        atomic_write(run_dir / "metrics.jsonl", lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in kept)))
        save_json(config, run_dir / "config.json")
    except OSError as err:
        raise cannot_write(run_dir, err, "run --resume again") from None
    training.write_dir = run_dir
    print(f"resuming {run_dir} at iteration {training.iteration} of {training.total}")


def publish_first_evaluation(training, run_dir: Path, config: dict) -> None:
    """A fresh run writes into a hidden sibling until its first evaluation and checkpoint are complete; then the
    sibling becomes the run directory, whole."""
    if not training.processes.is_main:
        training.evaluate()  # its share of the collective steps
        return
    staging = run_dir.parent / f".{run_dir.name}.new-{os.getpid()}"
    training.write_dir = staging
    try:
        staging.mkdir()
        save_json(config, staging / "config.json")
        training.evaluate()
        training.save_checkpoint()
        if run_dir.exists():  # the directory of a run that never started (earlier versions left some)
            leftover = staging.with_name(staging.name + "-old")
            os.rename(run_dir, leftover)
            os.rename(staging, run_dir)
            shutil.rmtree(leftover)
        else:
            os.rename(staging, run_dir)
    except OSError as err:
        if err.filename:  # the user knows the run directory, not its hidden staging twin
            err.filename = str(err.filename).replace(str(staging), str(run_dir))
        raise cannot_write(run_dir, err, "run again (nothing of this run was kept)") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    training.write_dir = run_dir
