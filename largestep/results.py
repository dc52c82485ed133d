"""Results files: JSON with nulls for non-finite numbers, checked against their schema whenever one is read,
written atomically (figures likewise), with the provenance of what made them.

On disk a results file is indented JSON with every list of numbers on one line, so that `git diff` of a
regenerated file shows which numbers moved.
"""
from __future__ import annotations

import errno
import hashlib
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
    # replacing a read-only file would drop its mode unasked (root may write anything: the mode bits tell)
    if path.is_file() and (not os.access(path, os.W_OK) or not os.stat(path).st_mode & 0o222):
        raise PermissionError(errno.EACCES, "the file is read-only (make it writable, or write elsewhere)", str(path))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    try:
        os.close(fd)
        yield tmp
        if path.is_file():  # a file replaced keeps its mode
            mode = os.stat(path).st_mode & 0o7777
        else:  # mkstemp makes 0600 files; results are ordinary files
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
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
    remove_stale_staging(out_dir)
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{inside(out_dir, name).name}.staging-{os.getpid()}-"))
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


STAGING = re.compile(r"\.(.+)\.staging-(\d+)-[^/]*")


def remove_stale_staging(out_dir) -> list[Path]:
    """Remove the staging directories in out_dir that a process killed mid-write (SIGKILL, a power cut) left
    behind: those whose process is gone.  Returns what was removed."""
    removed = []
    try:
        entries = list(Path(out_dir).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = STAGING.fullmatch(entry.name)
        if not match or not entry.is_dir():
            continue
        try:
            os.kill(int(match[2]), 0)
            continue  # its process still runs (another write in progress)
        except ProcessLookupError:
            pass
        except PermissionError:  # a process of another user: alive
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


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


def readable_json(obj, level: int = 0) -> str:
    """JSON text, one key per line and indented, with each list of plain values (numbers, strings, nulls) on
    one line: a regenerated file's diff shows which numbers moved.  Numbers are written as json.dumps writes
    them (shortest round-trip form), so reading the file gives back the same values."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(str(k))}: {readable_json(v, level + 1)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list):
        if all(not isinstance(v, (list, dict)) for v in obj):
            return json.dumps(obj, allow_nan=False, separators=(", ", ": "))
        return "[\n" + ",\n".join(inner + readable_json(v, level + 1) for v in obj) + "\n" + pad + "]"
    return json.dumps(obj, allow_nan=False)


def save_json(results: dict, path) -> Path:
    text = readable_json(to_jsonable(results)) + "\n"

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return atomic_write(path, write)


def load_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


# Where a results file holds measurements, a null is a non-finite number the writer could not put in JSON
# (a diverged seed's metrics, a run without survivors); everywhere else (config, provenance, a claim that
# could not be tested, a trajectory without a seed) null means "none" and stays None.
RUN_MEASUREMENTS = ("curves", "curves_collapsed", "curves_diverged", "final_mean", "final_median", "final_per_seed",
                    "extras")
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
    """A file that is not a readable results file; the message names the file and the field and says why."""


def load_results(path, families=None) -> dict:
    """A results file as `run` returned it: the same keys and numbers, NaN included (lists for arrays).

    Raises FileNotFoundError / OSError when it cannot be read and NotResults, naming the file and the field,
    when it is not JSON or does not follow the results schema (`check_schema`; `families`: the family names
    it may record, see `experiments.load`, which also checks each family's own fields).
    """
    try:
        results = load_json(path)
    except json.JSONDecodeError as err:
        raise NotResults(f"{path} is not JSON ({'empty' if not err.doc.strip() else err})") from None
    except UnicodeDecodeError:
        raise NotResults(f"{path} is not a text file") from None
    except RecursionError:
        raise NotResults(f"{path} nests too deeply to be a results file") from None
    try:
        check_schema(results, families)
    except NotResults as err:
        raise NotResults(f"{path}: {err}") from None
    return restore_numbers(results)


NUMBER = (int, float)


def fail(field: str, want: str, got) -> NotResults:
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    return NotResults(f"field '{field}' must be {want}, got {shown[:80]}")


def require(record: dict, field: str, kind, want: str, where: str = ""):
    """record[field], checked to be of `kind`; NotResults naming the field otherwise."""
    name = f"{where}.{field}" if where else field
    if field not in record:
        raise NotResults(f"field '{name}' is missing")
    value = record[field]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool) and bool not in (
            kind if isinstance(kind, tuple) else (kind,))):
        raise fail(name, want, value)
    return value


def require_counts(record: dict, field: str, where: str = "") -> list:
    """record[field], a list of whole numbers (seeds, counts)."""
    values = require(record, field, list, "a list of whole numbers", where)
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise fail(f"{where}.{field}" if where else field, "a list of whole numbers", values)
    return values


def require_numbers(values, field: str, depth: int, finite: bool = False) -> None:
    """A list (depth 1) or list of lists (depth 2) of numbers and nulls (finite=True: finite numbers only)."""
    if not isinstance(values, list):
        raise fail(field, "a list" + (" of lists" if depth == 2 else "") + " of numbers", values)
    for k, v in enumerate(values):
        if depth == 2:
            require_numbers(v, f"{field}.{k}", 1, finite)
        elif (v is not None or finite) and (not isinstance(v, NUMBER) or isinstance(v, bool)
                                            or (finite and not math.isfinite(v))):
            raise fail(f"{field}.{k}", "a finite number" if finite else "a number or null", v)


def require_grid(values, field: str, rows: int, columns: int, finite: bool = False) -> None:
    """A rows x columns list of lists of numbers (a surface, snapshots)."""
    require_numbers(values, field, 2, finite)
    if len(values) != rows or any(len(row) != columns for row in values):
        raise NotResults(f"field '{field}' must be {rows} x {columns} numbers")


def require_config(record: dict, cls, field: str = "config", where: str = ""):
    """record[field] rebuilt as the config dataclass `cls`, every field's type checked; NotResults naming the
    field otherwise (figures and claims read a results file's config)."""
    from .config import ConfigError, from_dict

    name = f"{where}.{field}" if where else field
    if not isinstance(record.get(field), dict):
        raise fail(name, "an object", record.get(field))
    try:
        return from_dict(cls, record[field], name, strict=True)
    except ConfigError as err:
        raise NotResults(f"field {err}") from None


def check_schema(results, families=None) -> None:
    """The envelope every results file has and the runs every reader reads; NotResults names the first
    field that is missing or of the wrong type.  A family's own fields are its module's `check`."""
    if not isinstance(results, dict):
        raise NotResults("it is not a results file of `python -m largestep reproduce` (not a JSON object)")
    if "experiment" not in results or "runs" not in results:
        raise NotResults("it is not a results file of `python -m largestep reproduce` (no 'experiment' and 'runs')")
    if not is_plain_name(results["experiment"]):  # it names the figures' files: it must not be a path
        raise NotResults("field 'experiment' must be a plain name (letters, digits, '_', '-', '.'; not starting "
                         f"with '.'), got {results['experiment']!r}")
    family = require(results, "family", str, "a string (made by an older version? rerun it)")
    if families is not None and family not in families:
        raise NotResults(f"field 'family' must be one of {', '.join(families)}, got {family!r}")
    require(results, "config", dict, "an object")
    if not isinstance(results.get("quick", False), bool):
        raise fail("quick", "true or false", results["quick"])
    n_seeds = require(results, "n_seeds", int, "a whole number")
    if n_seeds < 0:
        raise fail("n_seeds", "a whole number >= 0", n_seeds)
    for name in ("seconds", "provenance"):
        if name in results and not isinstance(results[name], dict):
            raise fail(name, "an object", results[name])
    for name, value in results.get("seconds", {}).items():
        if not isinstance(value, NUMBER):
            raise fail(f"seconds.{name}", "a number", value)
    runs = require(results, "runs", list, "a list of runs")
    for k, run in enumerate(runs):
        where = f"runs.{k}"
        if not isinstance(run, dict):
            raise fail(where, "an object", run)
        require(run, "key", str, "a string", where)
        require(run, "label", str, "a string", where)
        tried = require(run, "seeds_tried", int, "a whole number", where)
        lost = require(run, "seeds_diverged", int, "a whole number", where)
        if not 0 <= lost <= tried:
            raise NotResults(f"field '{where}.seeds_diverged' must lie in [0, seeds_tried = {tried}], got {lost}")
        require(run, "diverged", bool, "true or false", where)
        require(run, "deterministic", bool, "true or false", where)
        for name in ("seeds", "diverged_seeds", *(("collapsed_seeds",) if "collapsed_seeds" in run else ())):
            require_counts(run, name, where)
        per_seed = require(run, "final_per_seed", list, "a list of per-seed records", where)
        finals = require(run, "final_median", dict, "an object of numbers", where)
        for j, entry in enumerate(per_seed):
            at = f"{where}.final_per_seed.{j}"
            if not isinstance(entry, dict):
                raise fail(at, "an object", entry)
            require(entry, "seed", int, "a whole number", at)
            require(entry, "diverged", bool, "true or false", at)
            if not isinstance(entry.get("collapsed", False), bool):
                raise fail(f"{at}.collapsed", "true or false", entry["collapsed"])
            missing = set(finals) - set(entry)
            if missing:  # every seed records every final metric the run has (null where not measured)
                raise NotResults(f"field '{at}.{sorted(missing)[0]}' is missing")
            for name, value in entry.items():
                if name not in ("seed", "diverged", "collapsed") and value is not None and (
                        not isinstance(value, NUMBER) or isinstance(value, bool)):
                    raise fail(f"{at}.{name}", "a number or null", value)
        for name, value in finals.items():
            if value is not None and not isinstance(value, NUMBER):
                raise fail(f"{where}.final_median.{name}", "a number or null", value)
        curves = require(run, "curves", dict, "an object of curves", where)
        grid = require(curves, "iteration", list, "a list of iterations", f"{where}.curves")
        require_numbers(grid, f"{where}.curves.iteration", 1)
        for name, values in curves.items():
            if name != "iteration":
                require_numbers(values, f"{where}.curves.{name}", 2)
                if any(len(row) != len(grid) for row in values):
                    raise NotResults(f"field '{where}.curves.{name}' must hold one value per iteration of "
                                     f"'{where}.curves.iteration' ({len(grid)})")
        if not isinstance(run.get("seeds_collapsed", 0), int) or isinstance(run.get("seeds_collapsed"), bool):
            raise fail(f"{where}.seeds_collapsed", "a whole number", run["seeds_collapsed"])
        if not isinstance(run.get("curves_collapsed", {}), dict):
            raise fail(f"{where}.curves_collapsed", "an object of curves", run["curves_collapsed"])
        for name, values in run.get("curves_collapsed", {}).items():
            require_numbers(values, f"{where}.curves_collapsed.{name}", 2)
        for name, values in require(run, "curves_diverged", dict, "an object of curves", where).items():
            require_numbers(values, f"{where}.curves_diverged.{name}", 2)
            if any(len(row) != len(grid) for row in values):
                raise NotResults(f"field '{where}.curves_diverged.{name}' must hold one value per iteration of "
                                 f"'{where}.curves.iteration' ({len(grid)})")
        for name in ("decay_iterations",):
            if name in run:
                require_numbers(run[name], f"{where}.{name}", 1)


def save_figure(fig, path, **kwargs) -> Path:
    fmt = Path(path).suffix.lstrip(".")
    if fmt == "pdf":  # no creation date: the same results give the same file, so reruns leave git quiet
        kwargs.setdefault("metadata", {"CreationDate": None})

    def write(tmp):
        import zlib

        try:
            fig.savefig(tmp, format=fmt, **kwargs)
        except zlib.error as err:  # the PDF writer's compressor, when its stream could not be written
            raise OSError(errno.EIO, f"the {fmt.upper()} could not be written ({err}); is the disk full?",
                          str(path)) from None
    return atomic_write(path, write)


CODE = ("largestep", "deep_nets", "pyproject.toml")  # what computes results: a change here makes a run "+dirty"


def provenance() -> dict:
    """What made a results file: package, git commit (when run from a checkout; '+dirty' when the code that
    computes results has uncommitted changes, with a hash of that diff, never for the run's own outputs),
    versions, the processor and the BLAS in use, platform, command.

    Versions come from the installed distributions, so nothing heavy is imported for them.
    """
    from importlib.metadata import PackageNotFoundError, version

    from . import __version__

    info = {"largestep": __version__, **_git_state(), "python": platform.python_version()}
    for package in ("numpy", "numba", "llvmlite", "torch", "matplotlib", "mnist1d"):
        try:
            info[package] = version(package)
        except PackageNotFoundError:
            pass
    info["cpu"] = _cpu_model()
    info["blas"] = _blas()
    info["platform"] = platform.platform()
    info["command"] = " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv and sys.argv[0] else None
    return info


def _git(root: Path, *args) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                          check=True).stdout


def _git_state() -> dict:
    """{"git_commit": HEAD + '+dirty' when the code has uncommitted changes, "code_diff_sha256": ...}; the
    commit is None outside a checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        return {"git_commit": None}
    try:
        head = _git(root, "rev-parse", "HEAD").strip()
        diff = _git(root, "diff", "HEAD", "--", *CODE)
    except (OSError, subprocess.SubprocessError):
        return {"git_commit": None}
    if not diff:
        return {"git_commit": head}
    return {"git_commit": head + "+dirty", "code_diff_sha256": hashlib.sha256(diff.encode()).hexdigest()[:16]}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas() -> list:
    """The BLAS libraries loaded (numpy's OpenBLAS: version, kernel architecture, threads), by threadpoolctl."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return []
    return [{k: v for k, v in lib.items() if k in ("internal_api", "version", "architecture", "num_threads")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
