"""Command line: `python -m largestep reproduce | check | compare | table | draw` (see --help of each)."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import QUICK_ENV, experiments, quick_mode
from .config import ConfigError, apply_overrides, has_field
from .results import Terminated, sigterm_as_interrupt

EXIT_STATUS = ("Exit status: 0 done; 1 a robust claim failed (check, compare); 2 bad input (an argument, a missing, unreadable or "
               "malformed results file: one line naming the file and the field) or an unwritable place, nothing "
               "written; 130 / 143 interrupted by Ctrl-C / SIGTERM.")


class UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m largestep",
        description="Reproduce the experiments of 'SGD with large step sizes learns sparse features' "
                    "(ICML 2023): results as JSON plus figures, claims checked on them.",
        epilog=EXIT_STATUS,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser(
        "reproduce",
        help="run experiments and write DIR/<name>.json and DIR/<name>.png/.pdf",
        description="Run the named experiments (all but deep_mnist1d and deep_phase by default), each batched over "
                    "runs and seeds, and write DIR/<name>.json (config, per-run curves, final metrics, seeds tried and "
                    "diverged, provenance) and its figures DIR/<name>.png and .pdf, replacing an experiment's "
                    "earlier files as one set once all of them are written; then print its claims. Every "
                    "argument and config is checked before anything runs. " + EXIT_STATUS,
    )
    rep.add_argument("names", nargs="*", metavar="NAME",
                     help="experiments to run (see --list); default: all but deep_mnist1d and deep_phase (minutes; "
                          "name them to run them)")
    rep.add_argument("--list", action="store_true", help="print the known experiments and exit")
    rep.add_argument("--quick", action="store_true",
                     help=f"cut iterations (same figure shape) for a fast check; also set by {QUICK_ENV}=1")
    rep.add_argument("--seeds", type=int, default=None,
                     help="surviving training seeds per run, or tries per cell of a phase map (default: each "
                          "experiment's, see --list; 2 with --quick); diverging seeds are replaced, up to 10x as "
                          "many tried, and reported")
    rep.add_argument("--out", default=None,
                     help="output directory, created if missing (default: runs/reproduce, or runs/quick with "
                          "--quick and runs/custom with --set; the committed results in images/ are rewritten "
                          "only when asked: --out images, as `make figures` does)")
    rep.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                     help="override a config field of every named experiment by dotted path, value as JSON "
                          "(repeatable), e.g. python -m largestep reproduce diag_gd --set iterations=20001 "
                          "--set runs.0.schedule.lr=0.3")
    rep.add_argument("--no-progress", action="store_true", help="no progress bars")
    chk = sub.add_parser(
        "check",
        help="print each claim of an experiment as PASS/FAIL with the numbers behind it",
        description="Check the claims of experiments on their results files: each claim is robust (must hold "
                    "on any machine) or the paper's ordering (reported, not robust). A quick run's claims are "
                    "shown as SKIP. " + EXIT_STATUS + " e.g. python -m largestep check diag_sgd",
    )
    chk.add_argument("targets", nargs="*", metavar="NAME|RESULTS.json",
                     help="experiments (read as DIR/NAME.json) or results files; default: every experiment in DIR")
    chk.add_argument("--dir", default="images", help="where NAME.json files are read (default: images)")
    cmp_ = sub.add_parser(
        "compare",
        help="compare two directories of results: claims side by side, medians that moved",
        description="Compare the results files of NEW with those of the same names in OLD (e.g. a fresh "
                    "`reproduce` against the committed images/): every claim's PASS/FAIL side by side, the "
                    "divergence counts, and the final medians of NEW that lie outside OLD's interquartile range "
                    "of the same run and metric. " + EXIT_STATUS + " e.g. python -m largestep compare "
                    "runs/reproduce images",
    )
    cmp_.add_argument("new", metavar="NEW", help="directory of the results to judge")
    cmp_.add_argument("old", metavar="OLD", help="directory of the reference results (e.g. images)")
    tab = sub.add_parser(
        "table",
        help="print the generated blocks of README and docs/results.md from the results files",
        description="Print the findings (README: each experiment's robust claims with their verdicts and "
                    "numbers, the others' verdicts), the table of figures (one row per results file in DIR: runs, "
                    "medians of the headline metrics over surviving seeds, divergence, time) and all findings "
                    "(every claim with its numbers); with --write, replace the blocks between their markers in "
                    "each file that holds them. "
                    + EXIT_STATUS + " e.g. python -m largestep table --write README.md docs/results.md",
    )
    tab.add_argument("--dir", default="images", help="where the results files are read (default: images)")
    tab.add_argument("--write", metavar="FILE", nargs="+",
                     help="replace the blocks these files hold (README.md, docs/results.md) instead of printing them")
    drw = sub.add_parser(
        "draw",
        help="redraw the figures of results files (no training)",
        description="Redraw the figures (PNG and PDF, and the loss-surface animation) of each results file from "
                    "the file alone, as `reproduce` draws them, by the family the file records. Each file's "
                    "figures replace earlier ones as one set. " + EXIT_STATUS +
                    " e.g. python -m largestep draw images/diag_sgd.json --out /tmp/figures",
    )
    drw.add_argument("files", nargs="+", metavar="RESULTS.json", help="results files written by `reproduce`")
    drw.add_argument("--out", default=None, help="where the figures go, created if missing (default: beside each file)")
    return parser


def default_out(args) -> str:
    """The committed images/ are rewritten only on purpose: every run goes under runs/ unless told."""
    if args.quick:
        return os.path.join("runs", "quick")
    if args.overrides:
        return os.path.join("runs", "custom")
    return os.path.join("runs", "reproduce")


def no_name_for_overrides(overrides: list[str], known: list[str]) -> str:
    """--set without an experiment: a field path means something different in each config, so ask for one."""
    fields = [item.partition("=")[0] for item in overrides]
    having = [n for n in known if all(has_field(experiments.get(n).config, f) for f in fields)]
    example = f"python -m largestep reproduce {having[0] if having else 'NAME'} --set {overrides[0]}"
    return (f"--set edits the config of the experiments you name; name one, e.g. `{example}` "
            f"(experiments with {', '.join(fields)}: {', '.join(having) or 'none'})")


def check_out(out: str | None) -> None:
    if out is None:
        return
    if not out.strip():
        raise UsageError("--out must name a directory, got an empty string (use --out . for the current one)")
    if Path(out).exists() and not Path(out).is_dir():
        raise UsageError(f"--out {out} exists and is not a directory")


def prepare(args) -> list[tuple[experiments.Experiment, object, int]]:
    """Check every argument and plan every experiment (config, seeds) before anything runs or is written."""
    known = experiments.available()
    names = args.names or experiments.default_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown experiment(s): {', '.join(unknown)} (known: {', '.join(known)})")
    if args.overrides and not args.names:
        raise UsageError(no_name_for_overrides(args.overrides, known))
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    check_out(args.out)
    plan = []
    for name in dict.fromkeys(names):
        exp = experiments.get(name)
        try:
            config = apply_overrides(exp.config.quick() if args.quick else exp.config, args.overrides)
            config, n_seeds = experiments.plan(exp, config, args.seeds, args.quick)
        except ConfigError as err:
            raise UsageError(f"{name}: {err}") from None
        plan.append((exp, config, n_seeds))
    return plan


def reproduce(args) -> int:
    args.quick = args.quick or quick_mode()
    if args.list:
        if args.names or args.overrides:
            raise UsageError("--list prints every experiment and takes no NAME or --set; "
                             f"got {' '.join(args.names + ['--set ' + o for o in args.overrides])}")
        check_out(args.out)
        if args.seeds is not None and args.seeds < 1:
            raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
        names = experiments.available()
        width = max(len(n) for n in names)
        for name in names:
            exp = experiments.get(name)
            seeds = f"{exp.seeds} {'tries per cell' if exp.family == 'phase' else 'seeds'}"
            print(f"{name:{width}s}  {seeds:>17s}  {exp.title}{'  (run only when named)' if exp.on_request else ''}")
        return 0
    if args.out is None:
        args.out = default_out(args)
    plan = prepare(args)
    out = Path(args.out)
    ready_directory(out, f"--out {args.out}")
    done = {}  # results of this command by experiment name: claims may compare with another
    for exp, config, n_seeds in plan:
        results = experiments.run_experiment(exp, config, n_seeds=n_seeds, quick=args.quick,
                                             progress=not args.no_progress, planned=True)
        try:  # the results file and its figures are replaced as one set, or not at all
            written = experiments.save(results, out)
        except OSError as err:
            raise UsageError(cannot_write(f"{exp.name}'s results", err, out)) from None
        print(experiments.summary(results))
        done[exp.name] = results
        print(claims_report(results, done, out)[0])  # a claim that fails is a finding: judged by check / compare
        print(f"  wrote {', '.join(map(str, written))}")
    return 0


def cannot_write(what: str, err: OSError, out: Path) -> str:
    where = err.filename or out
    reason = err.strerror or str(err)
    fix = ("free some space" if getattr(err, "errno", None) == 28 else
           "fix its permissions or choose another place" if isinstance(err, PermissionError) else
           "fix the cause")
    return f"cannot write {what} into {out} ({where}: {reason}): {fix}; its previous files there are unchanged"


def ready_directory(out: Path, what: str) -> None:
    """Create `out` if missing; UsageError naming `what` when that fails or it is not writable."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create {what}: {err.strerror}") from None
    if not os.access(out, os.W_OK):
        raise UsageError(f"{what} is not writable")


def claims_report(results: dict, others: dict, directory: Path) -> tuple[str, int]:
    """The experiment's claims as text, and how many robust ones failed.  A claim that compares with another
    experiment reads its results from `others` or, failing that, from directory/NAME.json when that was made
    at the same scale; an unreadable one is named in the claim's line (not evaluated)."""
    from . import claims

    others = dict(others)
    notes = {}
    for claim in experiments.claims_for(results):
        path = directory / f"{claim.needs}.json"
        if claim.needs and claim.needs not in others and path.is_file():
            try:
                reference = experiments.load(path)
            except (OSError, ValueError) as err:
                notes[claim.needs] = f"{path} is unreadable: {err}"
                continue
            if reference.get("quick") == results.get("quick"):
                others[claim.needs] = reference
    verdicts = claims.evaluate(results, experiments.claims_for(results), others)
    verdicts = [v if v.holds is not None or v.claim.needs not in notes else
                claims.Verdict(v.claim, v.text, None, f"not evaluated: {notes[v.claim.needs]}") for v in verdicts]
    quick = bool(results.get("quick"))
    text = claims.report(results["experiment"], verdicts, quick, experiments.scale_note(results))
    beside = experiments.references(results)
    return text + ("\n" + beside if beside else ""), claims.robust_failures(verdicts, quick)


def read_results(path: Path, needed_by: str = "") -> dict:
    """experiments.load with its failures as one-line usage errors naming the file (and who needed it)."""
    from .results import NotResults

    by = f" (needed by {needed_by}'s claims)" if needed_by else ""
    try:
        return experiments.load(path)
    except FileNotFoundError:
        raise UsageError(f"no results file {path}{by} (make it with `python -m largestep reproduce "
                         f"{path.stem} --out {path.parent}`)") from None
    except IsADirectoryError:
        raise UsageError(f"{path}{by} is a directory, not a results file") from None
    except OSError as err:
        raise UsageError(f"cannot read {path}{by}: {err.strerror or err}") from None
    except NotResults as err:
        raise UsageError(f"{err}{by}") from None


def _targets(names: list[str], directory: Path) -> list[Path]:
    known = experiments.available()
    paths = []
    for target in names:
        if target.endswith(".json"):
            paths.append(Path(target))
        elif target in known:
            paths.append(directory / f"{target}.json")
        else:
            raise UsageError(f"unknown experiment {target!r} (known: {', '.join(known)}; or give a RESULTS.json)")
    return paths


def check(args) -> int:
    """`check [NAME | RESULTS.json ...]`: every claim, PASS/FAIL; exit 1 when a robust claim fails."""
    directory = Path(args.dir)
    paths = _targets(args.targets, directory) if args.targets else \
        [directory / f"{n}.json" for n in experiments.available() if (directory / f"{n}.json").is_file()]
    if not paths:
        raise UsageError(f"no results files in {directory}/ (make them with `python -m largestep reproduce`)")
    loaded = {path: read_results(path) for path in paths}  # every file read and checked before anything prints
    others = {r["experiment"]: r for r in loaded.values()}
    for path, results in loaded.items():
        for claim in experiments.claims_for(results):
            sibling = path.parent / f"{claim.needs}.json"
            if claim.needs and claim.needs not in others and sibling.is_file():
                others[claim.needs] = read_results(sibling, needed_by=results["experiment"])
    failures = 0
    for path, results in loaded.items():
        text, failed = claims_report(results, others, path.parent)
        print(text)
        failures += failed
    return 1 if failures else 0


def compare(args) -> int:
    """`compare NEW OLD`: claims side by side and the medians of NEW outside OLD's quartiles."""
    from . import compare as comparing

    new, old = Path(args.new), Path(args.old)
    for directory in (new, old):
        if not directory.is_dir():
            raise UsageError(f"{directory} is not a directory of results files")
    pairs = [(n, new / f"{n}.json", old / f"{n}.json") for n in experiments.available()
             if (new / f"{n}.json").is_file()]
    if not pairs:
        raise UsageError(f"no results files in {new}/ (make them with `python -m largestep reproduce --out {new}`)")
    missing = [name for name, _, o in pairs if not o.is_file()]
    loaded = [(name, read_results(n), read_results(o) if o.is_file() else None) for name, n, o in pairs]
    text, failures = comparing.report(loaded, new, old)
    print(text)
    if missing:
        print(f"(no file in {old}/ to compare with for: {', '.join(missing)})")
    return 1 if failures else 0


def table(args) -> int:
    """`table [--dir DIR] [--write README.md]`: README's generated blocks, from the results files alone."""
    from . import readme
    from .results import NotResults, atomic_write

    if not Path(args.dir).is_dir():
        raise UsageError(f"--dir {args.dir} is not a directory")
    try:
        blocks = readme.blocks(args.dir)
    except NotResults as err:
        raise UsageError(str(err)) from None
    if not args.write:
        print("\n\n".join(blocks.values()))
        return 0
    for target in args.write:
        try:
            updated = readme.replace_blocks(Path(target).read_text(), blocks)
            atomic_write(target, lambda tmp: Path(tmp).write_text(updated))
        except ValueError as err:
            raise UsageError(f"cannot update {target}: {err}") from None
        except OSError as err:
            raise UsageError(f"cannot update {target} ({err.filename or target}: {err.strerror or err}): "
                             "fix its permissions, or write elsewhere") from None
        print(f"wrote {', '.join(readme.held(updated))} into {target}")
    return 0


def draw(args) -> int:
    """`draw RESULTS.json ... [--out DIR]`: every file's figures (and extras) from the file alone."""
    plan = [(Path(name), read_results(Path(name))) for name in args.files]
    check_out(args.out)
    for path, results in plan:
        out = Path(args.out) if args.out is not None else path.parent
        ready_directory(out, f"--out {args.out}" if args.out is not None else str(out))
        try:  # the figures replace earlier ones as one set
            written = experiments.save(results, out, with_json=False)
        except OSError as err:
            raise UsageError(cannot_write(f"{results['experiment']}'s figures", err, out)) from None
        except (ValueError, TypeError, ArithmeticError) as err:  # values the schema admits but no axis can show
            raise UsageError(f"{path}: its figures cannot be drawn from the values it holds ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200] if str(err) else 'no detail'}); nothing was "
                             "written") from None
        skipped = "" if "surface" not in results or results.get("animation", {}).get("trajectories") else \
            " (animation skipped: the file holds no animation trajectories)"
        print(f"{path}: wrote {', '.join(map(str, written))}{skipped}")
    return 0


COMMANDS = {"reproduce": reproduce, "check": check, "compare": compare, "table": table, "draw": draw}


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with sigterm_as_interrupt():
            return COMMANDS[args.command](args)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as err:
        signum = signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT
        print(f"interrupted ({signal.Signals(signum).name}): experiments finished before are written in full; "
              "the interrupted one's files were left as they were", file=sys.stderr)
        return 128 + signum


if __name__ == "__main__":
    sys.exit(main())
