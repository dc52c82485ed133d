"""Results files: JSON with nulls for non-finite numbers, written atomically, and figures likewise."""
from __future__ import annotations

import json
import math
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def to_jsonable(obj):
    """Plain JSON types; numpy arrays become lists and non-finite floats become null."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# A name that becomes a file name (an experiment's results and figures, a run directory): letters, digits, '_',
# '-' and '.', not starting with '.', so that it can neither leave its directory nor hide in it.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,119}")


def is_plain_name(name) -> bool:
    return isinstance(name, str) and PLAIN_NAME.fullmatch(name) is not None and ".." not in name


def inside(directory, name: str) -> Path:
    """directory/name, refused (ValueError) unless `name` is a plain name, so the path stays inside `directory`."""
    if not is_plain_name(name):
        raise ValueError(f"{name!r} is not a plain file name (letters, digits, '_', '-', '.'; not starting with '.')")
    return Path(directory) / name


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call write(tmp_path) on a temporary file beside `path`, then rename it into place."""
    with atomic_target(path) as tmp:
        write(tmp)
    return Path(path)


@contextmanager
def atomic_target(path: str | os.PathLike):
    """Yield a temporary file's path beside `path`, renamed into place when the block ends; removed instead
    when it raises (or is interrupted), so `path` is never seen half-written."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        os.close(fd)
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600 files; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def written_together(out_dir, name: str):
    """Yield a hidden staging directory inside out_dir; files written there replace out_dir's files of the
    same names together when the block ends, and none of them does when it raises (or is interrupted).

    The set appears by one os.replace per file with SIGINT/SIGTERM held back, a window of microseconds
    in which only SIGKILL or a power cut could leave old and new files side by side; every file is
    whole at all times.  Targets that are directories are refused before anything is replaced.
    """
    out_dir = Path(out_dir)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{inside(out_dir, name).name}.staging-"))
    try:
        yield staging
        files = sorted(p.name for p in staging.iterdir())
        blocked = [out_dir / f for f in files if (out_dir / f).is_dir()]
        if blocked:
            raise IsADirectoryError(21, "a directory stands where a file must go", str(blocked[0]))
        with _signals_held():
            for f in files:
                os.replace(staging / f, out_dir / f)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that it unwinds and cleans up exactly as after Ctrl-C."""


@contextmanager
def sigterm_as_interrupt():
    """Inside the block SIGTERM raises Terminated (a KeyboardInterrupt): no temporary file outlives it."""
    def terminate(signum, frame):
        raise Terminated()
    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


@contextmanager
def _signals_held():
    """SIGINT and SIGTERM arriving inside the block are delivered when it ends (main thread only)."""
    arrived, previous = [], {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            previous[s] = signal.signal(s, lambda signum, frame: arrived.append(signum))
    except ValueError:  # not the main thread: signals cannot be caught here anyway
        pass
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for signum in arrived[:1]:
            signal.raise_signal(signum)


def save_json(results: dict, path) -> Path:
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(to_jsonable(results), f, allow_nan=False, separators=(",", ":"))
    return atomic_write(path, write)


def load_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


# Where a results file holds measurements, a null is a non-finite number the writer could not put in JSON
# (a diverged seed's metrics, a run without survivors); everywhere else (config, provenance, a claim that
# could not be tested, a trajectory without a seed) null means "none" and stays None.
RUN_MEASUREMENTS = ("curves", "curves_diverged", "final", "final_median", "final_per_seed", "extras")
MEASUREMENTS = ("surface", "data", "snapshot_x", "teacher_neurons", "teacher_output_weights",
                "stability_threshold", "bouncing_interval")
ANIMATION_MEASUREMENTS = ("a", "b", "train_loss")
TRAJECTORY_MEASUREMENTS = ("coords", "final")


def nan_for_null(obj):
    """obj with every None inside it (nested dicts and lists) replaced by NaN."""
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: nan_for_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [nan_for_null(v) for v in obj]
    return obj


def restore_numbers(results: dict) -> dict:
    """A loaded results dict with NaN back where `run` had a non-finite number (see MEASUREMENTS), so that
    figures, claims and summaries see the same values whether the results come from memory or a file."""
    def restored(record: dict, keys) -> dict:
        return {k: nan_for_null(v) if k in keys else v for k, v in record.items()}

    results = restored(results, MEASUREMENTS)
    if isinstance(results.get("runs"), list):
        results["runs"] = [restored(run, RUN_MEASUREMENTS) for run in results["runs"]]
    animation = results.get("animation")
    if isinstance(animation, dict):
        animation = restored(animation, ANIMATION_MEASUREMENTS)
        animation["trajectories"] = [restored(t, TRAJECTORY_MEASUREMENTS) for t in animation.get("trajectories", [])]
        results["animation"] = animation
    return results


class NotResults(ValueError):
    """A file that is not a results file of `reproduce`; the message names it and says why."""


def load_results(path) -> dict:
    """A results file as `run` returned it: the same keys and numbers, NaN included (lists for arrays).

    Raises FileNotFoundError / OSError when it cannot be read and NotResults when it is not JSON or not a
    results file (no 'experiment' and 'runs').
    """
    try:
        results = load_json(path)
    except json.JSONDecodeError as err:
        raise NotResults(f"{path} is not JSON ({err})") from None
    except UnicodeDecodeError:
        raise NotResults(f"{path} is not a text file") from None
    if not isinstance(results, dict) or "experiment" not in results or not isinstance(results.get("runs"), list):
        raise NotResults(f"{path} is not a results file of `python -m largestep reproduce` "
                         "(no 'experiment' and 'runs')")
    if not is_plain_name(results["experiment"]):  # it names the figures' files: it must not be a path
        raise NotResults(f"{path}: field 'experiment' must be a plain name (letters, digits, '_', '-', '.'; not "
                         f"starting with '.'), got {results['experiment']!r}")
    return restore_numbers(results)


def save_figure(fig, path, **kwargs) -> Path:
    fmt = Path(path).suffix.lstrip(".")
    if fmt == "pdf":  # no creation date: the same results give the same file, so reruns leave git quiet
        kwargs.setdefault("metadata", {"CreationDate": None})
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, **kwargs))


def provenance() -> dict:
    """What made a results file: package, git commit (when run from a checkout), versions, platform, command.

    Versions come from the installed distributions, so nothing heavy is imported for them.
    """
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    info = {"largestep": __version__, "git_commit": _git_commit(), "python": platform.python_version()}
    for package in ("numpy", "torch", "matplotlib", "mnist1d"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    info["platform"] = platform.platform()
    info["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None
    return info


def _git_commit() -> str | None:
    """HEAD of the checkout holding this package, '+dirty' when it has uncommitted changes; None elsewhere."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if dirty else "")
