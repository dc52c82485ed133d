"""Command line: `python -m largestep reproduce [NAME ...] [--quick] [--seeds N] [--out DIR]`."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import QUICK_ENV, experiments, quick_mode
from .config import apply_overrides
from .results import Terminated, save_figure, save_json, sigterm_as_interrupt, written_together
from .schedules import ConfigError


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m largestep",
        description="Reproduce the experiments of 'SGD with large step sizes learns sparse features' "
                    "(ICML 2023): results as JSON plus figures.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "reproduce",
        help="run experiments and write DIR/<name>.json and DIR/<name>.png/.pdf",
        description="Run the named experiments (all by default), each batched over runs and seeds, and "
                    "write DIR/<name>.json (config, per-run curves, final metrics, seeds tried and "
                    "diverged) and its figures DIR/<name>.png and .pdf, replacing an experiment's earlier "
                    "files as one set once all of them are written. Nothing is written when an argument is "
                    "invalid or DIR is unwritable (exit status 2); Ctrl-C or SIGTERM leaves the interrupted "
                    "experiment's earlier files as they were (exit status 130 / 143).",
    )
    rep.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (see --list); default: all")
    rep.add_argument("--list", action="store_true", help="print the known experiments and exit")
    rep.add_argument("--quick", action="store_true",
                     help=f"cut iterations (same figure shape) for a fast check; also set by {QUICK_ENV}=1")
    rep.add_argument("--seeds", type=int, default=5,
                     help="surviving training seeds per run (default 5); diverging seeds are replaced, up to 10x as many "
                          "tried, and reported")
    rep.add_argument("--out", default="images", help="output directory, created if missing (default: images)")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field of every named experiment by dotted path, value as JSON, "
                          "e.g. --set iterations=20001 --set runs.0.schedule.lr=0.3 (repeatable)")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def check_flags(args) -> None:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if not args.out.strip():
        raise UsageError("--out must name a directory, got an empty string (use --out . for the current one)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")


def prepare(args) -> list[tuple[experiments.Experiment, object]]:
    """Check every argument and build every config before anything runs or is written."""
    known = experiments.available()
    names = args.names or known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown experiment(s): {', '.join(unknown)} (known: {', '.join(known)})")
    check_flags(args)
    plan = []
    for name in dict.fromkeys(names):
        exp = experiments.get(name)
        config = exp.config.quick() if args.quick else exp.config
        try:
            config = apply_overrides(config, args.overrides)
            config.validate()
            experiments.check_memory(config, args.seeds)
        except ConfigError as err:
            raise UsageError(f"{name}: {err}") from None
        plan.append((exp, config))
    return plan


def reproduce(args) -> int:
    args.quick = args.quick or quick_mode()
    if args.list:
        if args.names or args.overrides:
            raise UsageError("--list prints every experiment and takes no NAME or --set; "
                             f"got {' '.join(args.names + ['--set ' + o for o in args.overrides])}")
        check_flags(args)
        for name in experiments.available():
            print(f"{name:18s} {experiments.get(name).title}")
        return 0
    plan = prepare(args)
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create --out {args.out}: {err.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"--out {args.out} is not writable")
    import matplotlib.pyplot as plt

    for exp, config in plan:
        results = experiments.run_experiment(exp, config, n_seeds=args.seeds, quick=args.quick,
                                             progress=not args.no_progress)
        try:  # the results file and its figures are replaced as one set, or not at all
            with written_together(out, exp.name) as staging:
                names = [save_json(results, staging / f"{exp.name}.json").name]
                for stem, fig in exp.figures(results).items():
                    for ext in ("png", "pdf"):
                        names.append(save_figure(fig, staging / f"{stem}.{ext}").name)
                    plt.close(fig)
                if exp.extras is not None:
                    names += [Path(p).name for p in exp.extras(results, staging)]
        except OSError as err:
            where = err.filename or args.out
            raise UsageError(f"cannot write {exp.name}'s results into --out {args.out} ({where}: "
                             f"{err.strerror or err}); its previous files there are unchanged") from None
        print(experiments.summary(results))
        print(f"  wrote {', '.join(str(out / n) for n in names)}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            if args.command == "reproduce":
                return reproduce(args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        signum = signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT
        print(f"interrupted ({signal.Signals(signum).name}): experiments finished before are written in full; "
              "the interrupted one's files were left as they were", file=sys.stderr)
        return 128 + signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
