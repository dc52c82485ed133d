"""Execute notebooks top to bottom: `python -m largestep.notebooks [--quick] [--save] NB.ipynb ...`.

By default the executed notebook is written as a copy under runs/notebooks/ and the tracked file is left as
it is; --save replaces the file itself (atomically), as `make notebooks` does to commit full-scale outputs.
Notebooks read LARGESTEP_QUICK from the environment (see `largestep.quick_mode`); --quick sets it, so CI
runs them at small scale.  Progress bars are turned off in the kernel (LARGESTEP_PROGRESS=0): a saved
notebook would keep a bar's last drawing, a stale "0%".
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import QUICK_ENV
from .progress import PROGRESS_ENV
from .results import atomic_write

COPIES = Path("runs") / "notebooks"


def execute(path, quick: bool = False, save: bool = False, timeout: int = 3600, nb=None, out=None):
    """Run the notebook at `path` in its own directory (`nb` runs that notebook object there instead); write
    it back in place when save=True, or to `out` when given."""
    import nbclient
    import nbformat

    path = Path(path)
    if nb is None:
        nb = nbformat.read(path, as_version=4)
    previous = {name: os.environ.get(name) for name in (QUICK_ENV, PROGRESS_ENV)}
    os.environ[QUICK_ENV] = "1" if quick else "0"
    os.environ[PROGRESS_ENV] = "0"
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    target = path if save else out
    if target is not None:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, lambda tmp: nbformat.write(nb, tmp))
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m largestep.notebooks", description=__doc__.split("\n")[0],
                                     epilog=f"Without --save, NB.ipynb executed is written to {COPIES}/NB.ipynb.")
    parser.add_argument("paths", nargs="+", help="notebooks to execute")
    parser.add_argument("--quick", action="store_true", help=f"small-scale run ({QUICK_ENV}=1)")
    parser.add_argument("--save", action="store_true", help="replace each notebook file with its executed version")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for p in args.paths:
        start = time.perf_counter()
        out = None if args.save else COPIES / Path(p).name
        execute(p, quick=args.quick, save=args.save, out=out)
        print(f"executed {p} in {time.perf_counter() - start:.0f} s; wrote {p if args.save else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
