"""The run directory of `train.py` while it runs: one process at a time (a lock file beside it, held even when
someone deletes the file), checkpoints that are ours, whole and in range, metrics lines torn by a crash, and
errors that say what to do (RunError, exit status 2).  What the directory is called and what its files hold:
deep_nets/runs.py."""
from __future__ import annotations

import fcntl
import io
import json
import math
import os
import shutil
from pathlib import Path

import torch

from largestep.config import ConfigError
from largestep.results import atomic_write

from deep_nets.runs import RunDirError, SETUP_FLAGS, defaults, evaluation_grid, read_config, read_metrics, write_config

CHECKPOINT_KEYS = {"model", "ema", "optimizer", "stream", "iteration", "interval_loss_sum", "interval_steps"}
RESUME_HINT = "continue with --resume (the last checkpoint is intact)"


class RunError(Exception):
    """The run directory cannot be used as asked (in use, corrupt, unwritable); the message says what to do."""


class RunLock:
    """An exclusive flock on <out_dir>/<exp_name>/.<run name>.lock for the whole life of a run, so that two
    processes never write one run directory; the OS drops it when its process dies, even by SIGKILL.
    The file holds the holder's PID, which a refused process names.  A lock file deleted while held would let a
    second process lock a new file of that name: `check()`, before every write, finds the file on disk still the
    one held, or locks the new one, or (another process got it) stops this one before it writes."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.fd = run_dir, run_dir.parent / f".{run_dir.name}.lock", None

    def acquire(self) -> None:
        fd, holder = self._lock_file_on_disk()
        if fd is None:
            raise RunError(f"run directory {self.run_dir} is in use by process {holder}: wait for it to "
                           "finish (or stop it), then continue with --resume")
        self.fd = fd
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:  # a full disk: give the lock back, leave no file
            self.release()
            raise

    def _lock_file_on_disk(self) -> tuple[int | None, str]:
        """A descriptor of the lock file now at self.path, locked; or None and the PID its holder wrote."""
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "that has not yet written its PID"
                os.close(fd)
                return None, holder
            if self._holds(fd):  # the previous holder may have removed the file after we opened it
                return fd, ""
            os.close(fd)

    def _holds(self, fd: int) -> bool:
        try:
            return os.stat(self.path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            return False

    def check(self) -> None:
        """Before a write: RunError when another process now holds the run (its lock file was deleted)."""
        if self.fd is None or self._holds(self.fd):
            return
        fd, holder = self._lock_file_on_disk()
        if fd is None:
            os.close(self.fd)
            self.fd = None
            raise RunError(f"the lock file {self.path} was deleted while this process held {self.run_dir}, and process "
                           f"{holder} has taken the run since: this one stopped before writing, so that one process "
                           "writes the run; let the other finish, or stop it and continue with --resume")
        os.close(self.fd)
        self.fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            if self._holds(self.fd):
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


def check_checkpoint(state: dict, config: dict, path: Path) -> None:
    """Refuse a checkpoint whose counters or stream state this run could not have written: the iteration outside
    [0, iterations], the steps since the last evaluation not those from its grid point, a diverged flag that is
    not a bool, a data order or generator state of another size."""
    total, every = config["iterations"], config["args"]["eval_iter_freq"]
    n_train = config["data"]["train_examples"]

    def refuse(field: str, value, expected: str):
        raise RunError(f"{path}: field '{field}' is {value!r}, {expected}; {start_over(path.parent)}")
    iteration = state["iteration"]
    if not isinstance(iteration, int) or isinstance(iteration, bool) or not 0 <= iteration <= total:
        refuse("iteration", iteration, f"expected an integer in [0, {total}]")
    last_evaluation = int(evaluation_grid(total, every)[evaluation_grid(total, every) <= iteration][-1])
    steps = state["interval_steps"]
    if not isinstance(steps, int) or isinstance(steps, bool) or steps != iteration - last_evaluation:
        refuse("interval_steps", steps, f"expected {iteration - last_evaluation} (steps since the evaluation at "
                                        f"iteration {last_evaluation})")
    loss_sum = state["interval_loss_sum"]
    if not (isinstance(loss_sum, torch.Tensor) and loss_sum.dtype == torch.float64 and loss_sum.numel() == 1):
        refuse("interval_loss_sum", loss_sum, "expected one float64 number")
    if not isinstance(state.get("diverged", False), bool):
        refuse("diverged", state["diverged"], "expected true or false")
    stream = state["stream"]
    if not isinstance(stream, dict) or set(stream) != {"generator", "perm", "position"}:
        refuse("stream", sorted(stream) if isinstance(stream, dict) else stream, "expected generator, perm, position")
    def size(t) -> str:
        return f"{t.numel()} values of {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
    generator_size = torch.Generator().get_state().numel()
    generator, perm, position = stream["generator"], stream["perm"], stream["position"]
    if not (isinstance(generator, torch.Tensor) and generator.dtype == torch.uint8 and generator.numel() == generator_size):
        refuse("stream.generator", size(generator), f"expected a generator state of {generator_size} bytes")
    if not (isinstance(perm, torch.Tensor) and perm.dtype == torch.int64 and perm.numel() == n_train):
        refuse("stream.perm", size(perm), f"expected a data order of the {n_train} training examples")
    if not (isinstance(position, torch.Tensor) and position.numel() == 1 and not position.is_floating_point()
            and 0 <= int(position) <= n_train):
        refuse("stream.position", position.tolist() if isinstance(position, torch.Tensor) else position,
               f"expected an integer in [0, {n_train}]")


def save_checkpoint(state: dict, path: Path) -> None:
    """torch.save, atomically.  Serialized in memory first: torch's own file writer turns a full disk into a
    RuntimeError without the errno; Python's write gives the OSError that names the file and its reason."""
    buffer = io.BytesIO()
    torch.save(state, buffer)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(buffer.getbuffer())
    try:
        atomic_write(path, write)
    except OSError as err:  # name the file the user knows, not the temporary one
        err.filename = str(path)
        raise


def metrics_up_to(path: Path, iteration: int) -> list[str]:
    """The lines of metrics.jsonl up to `iteration` (later ones are recomputed on resume); a last line torn by a
    crash or a full disk is dropped, and said so."""
    try:
        rows, torn = read_metrics(path)
    except RunDirError as err:
        raise RunError(f"{err}; {start_over(path.parent)}" if str(err).startswith("cannot read")
                       else f"{err}: repair or delete that line (with every line after it), then --resume") from None
    if torn:
        print(f"{path}: dropped an incomplete last line ({len(torn)} characters) left by an interrupted write; "
              "it is recomputed", flush=True)
    return [line for line, row in rows if row["iteration"] <= iteration]


def cannot_write(path, err: OSError, then: str) -> RunError:
    return RunError(f"cannot write {err.filename or path} ({err.strerror or err}): free some space or fix "
                    f"permissions, then {then}")


def prepare_run_dir(a, config: dict, run_dir: Path) -> dict | None:
    """The checkpoint of the run in `run_dir` when resuming (None: a fresh run); the caller holds its lock."""
    ckpt_path = run_dir / "checkpoint.pt"
    if not started(run_dir):
        return None
    if not a.resume:
        raise ConfigError(f"run directory {run_dir} already holds a run: pass --resume to continue it, "
                          "or choose another --exp_name / --out_dir")
    old = None
    if (run_dir / "config.json").exists():
        try:
            old = read_config(run_dir)
        except RunDirError as err:
            raise RunError(f"{err}; {start_over(run_dir)}") from None
        base = defaults()  # a flag added since the run started had its default
        changed = sorted(k for k in config["args"]
                         if k not in SETUP_FLAGS and old["args"].get(k, base[k]) != config["args"][k])
        if changed:
            raise ConfigError(f"--resume with different settings than the run in {run_dir}: {', '.join(changed)}")
        was = old.get("data", {}).get("digest")
        if was and was != config["data"]["digest"]:
            raise ConfigError(f"--resume: the data set {config['data']['name']} has changed since the run in {run_dir} "
                              f"began (contents {was[:12]}..., now {config['data']['digest'][:12]}...): restore the "
                              "data it was trained on, or start a new run (another --exp_name or --out_dir)")
    if not ckpt_path.exists():  # checkpoints are not committed: a finished run may come without one
        rows = metrics_up_to(run_dir / "metrics.jsonl", math.inf)
        last = json.loads(rows[-1]) if rows else {}
        if last.get("iteration", -1) >= config["iterations"] or last.get("diverged"):
            return {"iteration": last["iteration"], "diverged": bool(last.get("diverged"))}
        raise RunError(f"{run_dir} holds metrics of an unfinished run but no checkpoint.pt; {start_over(run_dir)}")
    checkpoint = load_checkpoint(ckpt_path)
    check_checkpoint(checkpoint, config, ckpt_path)
    stop = a.stop_at_iteration
    if stop is not None and stop <= checkpoint["iteration"] < config["iterations"]:
        raise ConfigError(f"--stop_at_iteration {stop} is not after iteration {checkpoint['iteration']}, where the run "
                          f"in {run_dir} continues: pass one in [{checkpoint['iteration'] + 1}, {config['iterations']}], "
                          "or leave it out")
    return checkpoint


def resume(training, checkpoint: dict, run_dir: Path, config: dict, lock: RunLock | None) -> None:
    """Restore `checkpoint` and drop the metrics lines a killed run wrote after it (they will be recomputed)."""
    try:
        training.restore(checkpoint)
    except Exception as err:  # another model's or data set's state: say so instead of a state-dict dump
        raise RunError(f"{run_dir / 'checkpoint.pt'} does not fit this run ({short_reason(err)}); "
                       f"{start_over(run_dir)}") from None
    if not training.processes.is_main:
        return
    kept = metrics_up_to(run_dir / "metrics.jsonl", training.iteration)
    lock.check()
    try:
        atomic_write(run_dir / "metrics.jsonl", lambda tmp: Path(tmp).write_text("".join(ln + "\n" for ln in kept)))
        write_config(config, run_dir)
    except OSError as err:
        raise cannot_write(run_dir, err, "run --resume again") from None
    training.write_dir = run_dir
    print(f"resuming {run_dir} at iteration {training.iteration} of {training.total}", flush=True)


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
        write_config(config, staging)
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
