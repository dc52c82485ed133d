"""Do the ReLU experiments still give the committed results?  Reruns them at full scale and compares.

    .venv/bin/python benchmarks/check_relu_results.py [--only relu_1d ...] [--sharpness] [--images images]

For each experiment, runs its full-scale config with the seed count of the committed images/<name>.json
and compares, run by run and seed by seed, every recorded curve (losses, Jacobian rank, feature
sparsity, effective rank; survivors' `curves` and diverged seeds' `curves_diverged`) and the seeds tried
and diverged, exactly (bit for bit, NaN equal to NaN).  The sharpness is a separate metric that the
metric speed work leaves alone: skipped unless --sharpness (it is the dearest to rerun).  Prints each
value that moved; exit status 1 when any did, 2 when a committed file is missing or was made with
another config.
"""
from __future__ import annotations

import largestep  # noqa: F401  (first: it pins numpy's OpenBLAS to one thread before numpy loads)

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

from largestep.config import to_dict
from largestep.experiments import get, run_experiment
from largestep.results import load_results, to_jsonable

NAMES = ("relu_two_layer", "relu_1d", "relu_multi_layer")


def compare(name: str, images: Path, sharpness: bool) -> int:
    """Number of values that differ between a fresh run and the committed results; prints them."""
    path = images / f"{name}.json"
    if not path.exists():
        print(f"{path}: missing; run `python -m largestep reproduce {name}` first", file=sys.stderr)
        sys.exit(2)
    committed = load_results(path)
    exp = get(name)
    config = exp.config
    if to_dict(config) != committed["config"]:
        print(f"{path}: made with another config than {name}'s full-scale one; regenerate it", file=sys.stderr)
        sys.exit(2)
    if not sharpness and getattr(config, "sharpness_points", 0):
        config = dataclasses.replace(config, sharpness_points=0)
    start = time.process_time()
    fresh = run_experiment(exp, config=config, n_seeds=committed["n_seeds"], progress=False)
    fresh = json.loads(json.dumps(to_jsonable(fresh)))  # what writing the JSON would keep: the same rounding
    seconds = time.process_time() - start
    moved = compared = 0
    for old_run, new_run in zip(committed["runs"], fresh["runs"], strict=True):
        for key in ("seeds_tried", "diverged_seeds"):
            if old_run[key] != new_run[key]:
                print(f"  {name} {old_run['label']}: {key} {old_run[key]} -> {new_run[key]}")
                moved += 1
        for group in ("curves", "curves_diverged"):
            old_curves, new_curves = old_run.get(group) or {}, new_run.get(group) or {}
            for curve in sorted(set(old_curves) & set(new_curves)):
                if curve == "iteration":
                    continue
                old = np.array(old_curves[curve], dtype=float)
                new = np.array([[np.nan if v is None else v for v in row] for row in new_curves[curve]], dtype=float)
                compared += old.size
                if old.shape != new.shape:
                    print(f"  {name} {old_run['label']} {group}.{curve}: shape {old.shape} -> {new.shape}")
                    moved += old.size
                    continue
                differ = ~((old == new) | (np.isnan(old) & np.isnan(new)))
                for seed, point in zip(*np.nonzero(differ)):
                    print(f"  {name} {old_run['label']} {group}.{curve} seed row {seed}, grid point {point}: "
                          f"{float(old[seed, point])!r} -> {float(new[seed, point])!r}")
                moved += int(differ.sum())
    print(f"{name}: {committed['n_seeds']} seeds, {compared} values compared, {moved} moved "
          f"({seconds:.0f} CPU s)")
    return moved


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=NAMES, default=list(NAMES))
    parser.add_argument("--images", type=Path, default=Path(__file__).resolve().parents[1] / "images")
    parser.add_argument("--sharpness", action="store_true", help="rerun and compare the sharpness too")
    args = parser.parse_args(argv)
    moved = sum(compare(name, args.images, args.sharpness) for name in args.only)
    print("identical" if moved == 0 else f"{moved} values moved")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
