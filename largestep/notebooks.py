"""Execute notebooks top to bottom: `python -m largestep.notebooks [--quick] [--no-save] NB.ipynb ...`.

Notebooks read LARGESTEP_QUICK from the environment (see `largestep.quick_mode`); --quick sets it, so CI
runs them at small scale.  Without --no-save the executed notebook replaces the file atomically.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import QUICK_ENV
from .results import atomic_write


def execute(path, quick: bool = False, save: bool = True, timeout: int = 3600, nb=None):
    """Run the notebook at `path` in its own directory; `nb` runs that notebook object there instead."""
    import nbclient
    import nbformat

    path = Path(path)
    if nb is None:
        nb = nbformat.read(path, as_version=4)
    previous = os.environ.get(QUICK_ENV)
    os.environ[QUICK_ENV] = "1" if quick else "0"
    try:
        nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    finally:
        if previous is None:
            os.environ.pop(QUICK_ENV, None)
        else:
            os.environ[QUICK_ENV] = previous
    if save:
        atomic_write(path, lambda tmp: nbformat.write(nb, tmp))
    return nb


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m largestep.notebooks", description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks to execute")
    parser.add_argument("--quick", action="store_true", help=f"small-scale run ({QUICK_ENV}=1)")
    parser.add_argument("--no-save", action="store_true", help="execute only; leave the files unchanged")
    args = parser.parse_args(argv)
    missing = [p for p in args.paths if not Path(p).is_file()]
    if missing:
        print(f"error: no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    for p in args.paths:
        start = time.perf_counter()
        execute(p, quick=args.quick, save=not args.no_save)
        print(f"executed {p} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
