"""Every `python -m largestep ...` command written in the README, docs, notebooks and --help runs as written.

README's commands run end to end in quick mode into a temporary directory; the others (full-scale runs of
slow experiments) go through everything `reproduce` checks before it trains (names, flags, --set paths,
config validation), which is where a documented command that cannot run fails.
"""
import re
import shlex
from pathlib import Path

import nbformat
import pytest

from largestep.__main__ import build_parser, main, prepare

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"python -m largestep(?=[\s`]|$)[^`\n#;)]*")
PLACEHOLDER = re.compile(r"\b(NAME|N|DIR|FIELD=VALUE|RESULTS\.json)\b|\[|\.\.\.")


def _commands(text: str) -> list[str]:
    return [c.strip() for c in COMMAND.findall(text) if not PLACEHOLDER.search(c)]


def _help_texts() -> str:
    parser = build_parser()
    texts = [parser.description or ""]
    for sub in parser._subparsers._group_actions[0].choices.values():
        texts += [sub.description or ""] + [a.help or "" for a in sub._actions]
    return "\n".join(" ".join(t.split()) for t in texts)  # one line each: help strings wrap in the source


def _documented() -> dict[str, list[str]]:
    sources = {"README.md": (ROOT / "README.md").read_text(), "--help": _help_texts()}
    for path in sorted((ROOT / "docs").glob("*.md")):
        sources[f"docs/{path.name}"] = path.read_text()
    for path in sorted(ROOT.glob("*.ipynb")) + sorted(ROOT.glob("deep_nets/*.ipynb")):
        cells = nbformat.read(path, as_version=4).cells
        sources[path.name] = "\n".join(c.source for c in cells if c.cell_type == "markdown")
    return {name: _commands(text) for name, text in sources.items()}


DOCUMENTED = _documented()
ALL = sorted({c for commands in DOCUMENTED.values() for c in commands})


def _argv(command: str, out: Path) -> list[str]:
    argv = shlex.split(command)[3:]
    if argv[:1] == ["reproduce"] and not {"--list", "--help", "-h"} & set(argv):
        argv += ["--quick", "--out", str(out), "--no-progress"]
    if argv[:1] == ["draw"]:  # the repository's results files, drawn into the test's directory
        argv = ["draw", *(str(ROOT / a) for a in argv[1:] if a.endswith(".json")), "--out", str(out)]
    if argv[:1] in (["check"], ["table"]):  # the repository's results files; README rewritten as a copy in out
        argv += ["--dir", str(ROOT / "images")]
    if argv[:1] == ["table"] and "--write" in argv:  # each file it writes, as a copy in out
        out.mkdir(parents=True, exist_ok=True)
        for i in range(argv.index("--write") + 1, len(argv)):
            if argv[i].startswith("--"):
                break
            copy = out / Path(argv[i]).name
            copy.write_text((ROOT / argv[i]).read_text())
            argv[i] = str(copy)
    return argv


def test_commands_were_found_where_users_read_them():
    assert len(DOCUMENTED["README.md"]) >= 3 and DOCUMENTED["--help"]
    assert any("--set" in c for c in DOCUMENTED["README.md"]) and any("--set" in c for c in DOCUMENTED["--help"])


@pytest.mark.parametrize("command", sorted(set(DOCUMENTED["README.md"])))
def test_readme_command_runs_in_quick_mode(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # anything written outside --out would land here
    code = main(_argv(command, tmp_path / "out"))
    err = capsys.readouterr().err
    assert code == 0, f"{command}: {err}"
    assert {p.name for p in tmp_path.iterdir()} <= {"out"}


@pytest.mark.parametrize("command", [c for c in ALL if c.split()[3:4] == ["reproduce"]])
def test_documented_reproduce_command_is_accepted(command, tmp_path):
    args = build_parser().parse_args(_argv(command, tmp_path / "out"))
    if not args.list:
        assert prepare(args)


SWEEP = re.compile(r"python -m deep_nets\.sweep(?=[\s`]|$)[^`\n#;)]*")
SWEEP_DOCUMENTED = sorted({c.strip() for text in [(ROOT / "README.md").read_text()]
                           + [p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))]
                           for c in SWEEP.findall(text) if not re.search(r"\bGRID\b|\.\.\.", c)})


def test_sweep_commands_were_found():
    assert any("--dry-run" in c for c in SWEEP_DOCUMENTED) and any("slurm" in c for c in SWEEP_DOCUMENTED)


@pytest.mark.parametrize("command", SWEEP_DOCUMENTED)
def test_documented_sweep_command_runs_or_is_accepted(command, monkeypatch, capsys):
    """--dry-run commands run as written; the others need a cluster, a GPU or finished runs: their flags parse and
    their grid expands to runs train.py accepts (what the sweep checks before it submits anything)."""
    from deep_nets import sweep

    monkeypatch.chdir(ROOT)
    argv = shlex.split(command)[3:]
    sweep.build_sweep_parser().parse_args(argv)
    assert sweep.main([argv[0], "--dry-run"] if "--dry-run" not in argv else argv) == 0, capsys.readouterr().err
