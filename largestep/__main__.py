"""Command line: `python -m largestep reproduce [NAME ...] [--quick] [--seeds N] [--out DIR]`, `check`, `draw`."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import QUICK_ENV, experiments, quick_mode
from .config import ConfigError, apply_overrides, has_field
from .results import Terminated, sigterm_as_interrupt


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
    rep.add_argument("names", nargs="*", metavar="NAME",
                     help="experiments to run (see --list); default: all but deep_mnist1d (minutes; name it to run it)")
    rep.add_argument("--list", action="store_true", help="print the known experiments and exit")
    rep.add_argument("--quick", action="store_true",
                     help=f"cut iterations (same figure shape) for a fast check; also set by {QUICK_ENV}=1")
    rep.add_argument("--seeds", type=int, default=5,
                     help="surviving training seeds per run (default 5); diverging seeds are replaced, up to 10x as many "
                          "tried, and reported")
    rep.add_argument("--out", default=None,
                     help="output directory, created if missing (default: images for the full-scale defaults; "
                          "runs/quick with --quick and runs/custom with --set, so that only the paper's settings "
                          "rewrite the committed images/)")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field of every named experiment by dotted path, value as JSON "
                          "(repeatable), e.g. python -m largestep reproduce diag_gd --set iterations=20001 "
                          "--set runs.0.schedule.lr=0.3")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    chk = sub.add_parser(
        "check",
        help="print each claim of an experiment as PASS/FAIL with the numbers behind it",
        description="Check the claims of experiments on their results files: each claim is robust (must hold "
                    "on any machine) or the paper's ordering (reported, not robust). Exit status 0 when every "
                    "robust claim passes, 1 when one fails, 2 when a results file is missing or unreadable. "
                    "e.g. python -m largestep check diag_sgd",
    )
    chk.add_argument("targets", nargs="*", metavar="NAME|RESULTS.json",
                     help="experiments (read as DIR/NAME.json) or results files; default: every experiment in DIR")
    chk.add_argument("--dir", default="images", help="where NAME.json files are read (default: images)")
    tab = sub.add_parser(
        "table",
        help="print README's table of figures from the results files",
        description="Print the markdown table of figures (one row per results file in DIR: runs, medians of the "
                    "headline metrics over surviving seeds, divergence, time) that README.md shows; with --write, "
                    "replace the table between README's markers. e.g. python -m largestep table --write README.md",
    )
    tab.add_argument("--dir", default="images", help="where the results files are read (default: images)")
    tab.add_argument("--write", metavar="README.md", help="replace the table in this file instead of printing it")
    drw = sub.add_parser(
        "draw",
        help="redraw the figures of results files (no training)",
        description="Redraw the figures (PNG and PDF, and the loss-surface animation) of each results file from "
                    "the file alone, as `reproduce` draws them: the panels follow what the file holds, so a "
                    "renamed file or runs collected elsewhere draw too. Each file's figures replace earlier ones "
                    "as one set. Exit status 2, nothing written, when a file is missing, unreadable or not a "
                    "results file. e.g. python -m largestep draw images/diag_sgd.json --out /tmp/figures",
    )
    drw.add_argument("files", nargs="+", metavar="RESULTS.json", help="results files written by `reproduce`")
    drw.add_argument("--out", default=None, help="where the figures go, created if missing (default: beside each file)")
    return parser


def default_out(args) -> str:
    """images/ holds the committed full-scale results: a shortened or edited run goes elsewhere unless told."""
    if args.quick:
        return os.path.join("runs", "quick")
    if args.overrides:
        return os.path.join("runs", "custom")
    return "images"


def no_name_for_overrides(overrides: list[str], known: list[str]) -> str:
    """--set without an experiment: a field path means something different in each config, so ask for one."""
    fields = [item.partition("=")[0] for item in overrides]
    having = [n for n in known if all(has_field(experiments.get(n).config, f) for f in fields)]
    example = f"python -m largestep reproduce {having[0] if having else 'NAME'} --set {overrides[0]}"
    return (f"--set edits the config of the experiments you name; name one, e.g. `{example}` "
            f"(experiments with {', '.join(fields)}: {', '.join(having) or 'none'})")


def check_flags(args) -> None:
    if args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.out is None:
        return
    if not args.out.strip():
        raise UsageError("--out must name a directory, got an empty string (use --out . for the current one)")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {args.out} exists and is not a directory")


def prepare(args) -> list[tuple[experiments.Experiment, object]]:
    """Check every argument and build every config before anything runs or is written."""
    known = experiments.available()
    names = args.names or experiments.default_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown experiment(s): {', '.join(unknown)} (known: {', '.join(known)})")
    if args.overrides and not args.names:
        raise UsageError(no_name_for_overrides(args.overrides, known))
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
    if args.out is None:
        args.out = default_out(args)
    plan = prepare(args)
    out = Path(args.out)
    ready_directory(out, f"--out {args.out}")
    done = {}  # results of this command by experiment name: claims may compare with another experiment
    for exp, config in plan:
        results = experiments.run_experiment(exp, config, n_seeds=args.seeds, quick=args.quick,
                                             progress=not args.no_progress)
        try:  # the results file and its figures are replaced as one set, or not at all
            written = experiments.save(results, out)
        except OSError as err:
            where = err.filename or args.out
            raise UsageError(f"cannot write {exp.name}'s results into --out {args.out} ({where}: "
                             f"{err.strerror or err}); its previous files there are unchanged") from None
        print(experiments.summary(results))
        done[exp.name] = results
        print(claims_report(results, done, out))
        print(f"  wrote {', '.join(map(str, written))}")
    return 0


def ready_directory(out: Path, what: str) -> None:
    """Create `out` if missing; UsageError naming `what` when that fails or it is not writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {what}: {err.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"{what} is not writable")


def claims_report(results: dict, others: dict, directory: Path) -> str:
    """The experiment's claims; a claim that compares with another experiment reads its results from
    `others` or, failing that, from directory/NAME.json when that was made at the same scale."""
    from . import claims
    from .results import load_results

    others = dict(others)
    for claim in claims.CLAIMS.get(results["experiment"], []):
        path = directory / f"{claim.needs}.json"
        if claim.needs and claim.needs not in others and path.is_file():
            reference = load_results(path)
            if reference.get("quick") == results.get("quick"):
                others[claim.needs] = reference
    return claims.report(results, others, claims.scale_note(results))


def check(args) -> int:
    """`check [NAME | RESULTS.json ...]`: every claim, PASS/FAIL; exit 1 when a robust claim fails."""
    from . import claims

    directory = Path(args.dir)
    targets = args.targets or [n for n in experiments.available() if (directory / f"{n}.json").is_file()]
    if not targets:
        raise UsageError(f"no results files in {directory}/ (make them with `python -m largestep reproduce`)")
    loaded = []
    for target in targets:
        path = Path(target) if target.endswith(".json") else directory / f"{target}.json"
        if not target.endswith(".json") and target not in experiments.available():
            raise UsageError(f"unknown experiment {target!r} (known: {', '.join(experiments.available())})")
        loaded.append((path, read_results(path)))
    failures = 0
    for path, results in loaded:
        print(claims_report(results, {r["experiment"]: r for _, r in loaded}, path.parent))
        failures += claims.robust_failures(claims.evaluate(results, {r["experiment"]: r for _, r in loaded}))
    return 1 if failures else 0


def table(args) -> int:
    """`table [--dir DIR] [--write README.md]`: README's table of figures, from the results files alone."""
    from . import readme_table
    from .results import atomic_write

    if not Path(args.dir).is_dir():
        raise UsageError(f"--dir {args.dir} is not a directory")
    text = readme_table.table(args.dir)
    if not args.write:
        print(text)
        return 0
    try:
        readme = Path(args.write).read_text()
        updated = readme_table.replace_in(readme, text)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot update {args.write}: {err}") from None
    atomic_write(args.write, lambda tmp: Path(tmp).write_text(updated))
    print(f"wrote the table of figures into {args.write}")
    return 0


def read_results(path: Path) -> dict:
    """load_results with its failures as one-line usage errors."""
    from .results import NotResults, load_results

    try:
        return load_results(path)
    except FileNotFoundError:
        raise UsageError(f"no results file {path} (make it with `python -m largestep reproduce "
                         f"{path.stem} --out {path.parent}`)") from None
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not a results file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}: {err.strerror or err}") from None
    except NotResults as err:
        raise UsageError(str(err)) from None


def draw(args) -> int:
    """`draw RESULTS.json ... [--out DIR]`: every file's figures (and extras) from the file alone."""
    plan = []
    for name in args.files:
        path = Path(name)
        results = read_results(path)
        if experiments.figures_for(results) is None:
            raise UsageError(f"{path} holds none of the curves this package's figures draw "
                             f"(runs record: {', '.join(sorted(experiments.recorded_curves(results))) or 'nothing'})")
        plan.append((path, results))
    if args.out is not None:
        check_flags(argparse.Namespace(seeds=1, out=args.out))
    for path, results in plan:
        out = Path(args.out) if args.out is not None else path.parent
        ready_directory(out, f"--out {args.out}" if args.out is not None else str(out))
        name = results["experiment"]
        try:  # the figures replace earlier ones as one set
            written = experiments.save(results, out, with_json=False)
        except OSError as err:
            raise UsageError(f"cannot write {name}'s figures into {out} ({err.filename or out}: "
                             f"{err.strerror or err}); its previous files there are unchanged") from None
        skipped = "" if experiments.extras_for(results) is not None or "surface" not in results else \
            " (animation skipped: the file holds no animation trajectories)"
        print(f"{path}: wrote {', '.join(map(str, written))}{skipped}")
    return 0


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            if args.command == "reproduce":
                return reproduce(args)
            if args.command == "check":
                return check(args)
            if args.command == "table":
                return table(args)
            if args.command == "draw":
                return draw(args)
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
