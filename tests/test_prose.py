"""Prose quotes no result number: README.md, docs/*.md and the notebooks' Markdown cells may state methods and
hyperparameters, but what a run measured (a median, a count of diverged seeds, a fraction, a timing) is printed
from the results (README's generated blocks, a notebook's `what_to_look_at` cell), so that it cannot drift.

A number in prose passes when it is one of:
- a value of some registered experiment's config (full and quick, every field, recursively: schedules, decays,
  warmups, grids; for the deep nets, train.py's flag defaults and the paper's sweep files), or the length of one
  of its lists ("12 step sizes"), as a percentage too (a decay point 0.3 is "30%"), or 2/η of one (the stability
  limit the sharpness is drawn against, shown rounded): hyperparameters are what a reader needs to rerun, and the
  configs are where they live, so a number that is not there is not a hyperparameter;
- the level of an interval ("95% interval"); a command's duration ("9 min": machine-bound, stated with its machine);
- a year, a date, a version number (3.10+, 2.5.1, CUDA 12.4), or the number of a figure, section, table or
  equation ("Figure 3");
- a heading's or a numbered list's own number;
- a value the paper states, right after "the paper's" ("the paper's 0.272", its step that diverges here);
- inside code (spans and fenced blocks: commands, identifiers), a link target, an HTML comment, an exponent
  (10^4.15, 10⁵: the written form of an iteration count), or a word (ResNet-18, CIFAR-10, ℓ0);
- inside README's generated blocks (`largestep.readme.MARKERS`), or a section whose heading says it holds the
  paper's reported values.
Two shapes are flagged whatever their numbers: a count "k of m" (seeds that diverged, draws where a claim holds)
and a training seed named by number ("seeds 0 and 2"): both are what a run found, and small numbers like these are
also hyperparameters somewhere, so membership alone would let them through.
"""
from __future__ import annotations

import dataclasses
import json
import re
from functools import lru_cache
from pathlib import Path

import pytest

from largestep.readme import MARKERS

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("*.ipynb")) + sorted((ROOT / "deep_nets").glob("*.ipynb"))
DOCS = sorted((ROOT / "docs").glob("*.md"))

# A number standing alone (10,752; 0.282; 1.4e-4; 30%), not part of a word: ResNet-18, ℓ0 and 1D are names, while
# 20x ("20x fewer iterations") is a number.
NUMBER = re.compile(r"(?<![\w.,])(?<![A-Za-z]-)(\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e[-+−]?\d+)?)(%?)"
                    r"(?![\w.]*[A-Za-wyz_])")
COUNT = re.compile(r"(?<![\w.])\d+ (?:out )?of (?:the |its |all )?\d+(?![\w.%])")
SEED = re.compile(r"(?<!data )(?<!data-)\bseeds? \d+(?:(?:, | and | or )\d+)*(?![\w.])", re.IGNORECASE)
PAPER_REFERENCE = re.compile(r"\b(?:Figures?|Fig\.|Sections?|Tables?|Eqs?\.|Equations?|Appendix|Theorem|Lemma|"
                             r"Proposition|Corollary|ICML|Python|PyTorch|torch|numpy|numba|CUDA|version|v|arXiv:)"
                             r"\s*\d+(?:\.\d+)*(?:\s*[–-]\s*\d+)?")
SKIPPED = [
    re.compile(r"<!--.*?-->", re.DOTALL),  # HTML comments
    re.compile(r"(`+).+?\1", re.DOTALL),  # code spans
    re.compile(r"\]\([^)]*\)"),  # link targets
    re.compile(r"https?://\S+"),
    re.compile(r"\^\{[^}]*\}|\^[-−]?[\d.]+|[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+"),  # exponents
    re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d+\.\d+\.\d+\b|\b\d+\.\d+\+"),  # dates, versions (3.10+)
    re.compile(r"^\s*(?:#+\s*)?\d+\.\s", re.MULTILINE),  # a heading's or a list item's own number
    PAPER_REFERENCE,
    re.compile(r"\b95% (?=(?:confidence )?(?:intervals?|band|CI)\b)"),  # the intervals' level, a method
    # how long a command takes ("make test takes 9 min"): machine-bound, said with its machine, and no claim rests
    # on it; README must give the two commands' times
    re.compile(r"(?<![\w.])\d+(?:\.\d+)?\s?(?:s|sec|seconds?|min|minutes?|h|hours?)\b"),
    re.compile(r"\bpaper's (?:own )?\$?(?:\\eta|η)?\s*=?\s*\d+(?:\.\d+)?\$?"),  # "the paper's 0.272"
]
# A section that holds the paper's own reported values says so in its heading ("## What the paper reports"), and
# so does one of cost arithmetic from assumed hardware rates ("## What it costs: an ESTIMATE"): neither is a result
# of our runs.
PAPERS_SECTION = re.compile(r"^#+ .*(?:\bpaper\b.*\breport|\bESTIMATE\b)")


def _walk(value, found: set):
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        found.add(abs(float(value)))
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), found)
    elif isinstance(value, (tuple, list, set, frozenset)):
        found.add(float(len(value)))  # "12 step sizes" counts a config's list
        for item in value:
            _walk(item, found)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, found)


@lru_cache(maxsize=None)
def hyperparameters() -> tuple[frozenset, frozenset]:
    """Every number of every registered experiment's config, as keys: (`_key` of each value shown exactly, each
    derived value written with 1 to 4 decimals, as prose rounds it)."""
    from largestep.experiments import available, get

    exact: set = set()
    for name in available():
        experiment = get(name)
        _walk((experiment.config, experiment.config.quick(), experiment.seeds), exact)
    # the deep study's runs are train.py runs: its flags' defaults and the paper's sweep files configure them
    from deep_nets.flags import build_parser

    _walk([action.default for action in build_parser()._actions], exact)
    for sweep in sorted((ROOT / "deep_nets" / "sweeps").glob("*.toml")):
        # the values after each `=`, comments dropped (tomllib is Python 3.11+, the package runs on 3.10)
        for line in sweep.read_text().splitlines():
            value = line.split("#")[0].partition("=")[2]
            _walk([float(v) for v in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])", value)], exact)
    percentages = {100 * v for v in exact if 0 < v <= 1}
    stability_limits = {2 / v for v in exact if 0 < v < 10}
    return (frozenset(map(_key, exact | percentages)),
            frozenset(f"{v:.{decimals}f}" for v in stability_limits for decimals in range(1, 5)))


def _key(value: float) -> float:
    """A value to 12 significant digits: 100 * 0.3 and 30 meet."""
    return float(f"{value:.12g}")


def allowed(token: str, percent: bool) -> bool:
    token = token.replace(",", "")  # thousands: 10,752
    value = float(token.replace("−", "-"))
    if value.is_integer() and 1900 <= value <= 2100 and not percent:
        return True  # a year
    exact, rounded = hyperparameters()
    if _key(abs(value)) in exact:
        return True
    # shown to the digits it has, at least two significant ones (7.1 for 2/0.282)
    return "e" not in token and len(token.replace(".", "").lstrip("0")) >= 2 and token in rounded


def _blank(text: str, pattern: re.Pattern) -> str:
    """Replace each match by spaces (newlines kept), so that line numbers stay right."""
    return pattern.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def prose(text: str) -> str:
    """The text the rules apply to: generated blocks, fenced code and the paper's own sections blanked."""
    for begin, end in MARKERS.values():
        text = _blank(text, re.compile(re.escape(begin) + ".*?" + re.escape(end), re.DOTALL))
    lines, fenced, papers_level = text.split("\n"), False, 0
    for i, line in enumerate(lines):
        heading = re.match(r"^(#+) ", line)
        if line.lstrip().startswith(("```", "~~~")):
            fenced, lines[i] = not fenced, ""
        elif fenced:
            lines[i] = ""
        elif heading and (not papers_level or len(heading.group(1)) <= papers_level):
            papers_level = len(heading.group(1)) if PAPERS_SECTION.match(line) else 0
        elif papers_level:
            lines[i] = ""
    text = "\n".join(lines)
    for pattern in SKIPPED:
        text = _blank(text, pattern)
    return text


def result_numbers(text: str) -> list[str]:
    """'line N: what: the line' for each number in `text` that reads as a result rather than a hyperparameter."""
    lines = text.split("\n")
    text = prose(text)
    found = []
    for pattern, what in ((COUNT, "a count"), (SEED, "a seed named by number")):
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start())
            found.append((line, f"{what} {m.group(0)!r}"))
        text = _blank(text, pattern)
    for m in NUMBER.finditer(text):
        if not allowed(m.group(1), bool(m.group(2))):
            found.append((text.count("\n", 0, m.start()), f"{m.group(0)!r}"))
    return [f"line {line + 1}: {what}: {lines[line].strip()[:120]}" for line, what in sorted(found)]


def markdown_of(path: Path) -> str:
    """A file's prose: the file itself, or a notebook's Markdown cells, one after another."""
    if path.suffix != ".ipynb":
        return path.read_text()
    cells = json.loads(path.read_text())["cells"]
    return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")


@pytest.mark.parametrize("path", [ROOT / "README.md", *DOCS, *NOTEBOOKS], ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_quotes_no_result_number(path):
    found = result_numbers(markdown_of(path))
    assert not found, f"{path.relative_to(ROOT)} quotes result numbers (print them from the results):\n" + \
        "\n".join(found)


@pytest.mark.parametrize("typed", ["the 50% run ends with test loss 0.467 in median",
                                   "at η = 0.282, 9 of 14 seeds diverged",
                                   "seeds 0 and 2 show both orderings",
                                   "a median ℓ0 of 72 at the 50% decay",
                                   "96% of the seeds tried diverged"])
def test_a_hand_typed_result_in_a_doc_is_flagged(typed):
    doc = (ROOT / "docs" / "experiments.md").read_text()
    assert not result_numbers(doc)
    found = result_numbers(doc.replace("\n## Common definitions", f"\n{typed}.\n\n## Common definitions", 1))
    assert found and all(typed[:20] in line for line in found), found


def test_a_hand_typed_result_in_a_notebooks_markdown_is_flagged_and_its_code_is_not(tmp_path):
    nb = json.loads(NOTEBOOKS[0].read_text())
    nb["cells"] += [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": ["print('test loss 0.467')"]}]
    copy = tmp_path / NOTEBOOKS[0].name
    copy.write_text(json.dumps(nb))
    assert not result_numbers(markdown_of(copy))
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": ["The 50% run ends at test loss 0.467."]})
    copy.write_text(json.dumps(nb))
    assert [line for line in result_numbers(markdown_of(copy)) if "0.467" in line]


def test_hyperparameters_and_the_allowed_forms_pass():
    text = ("SGD with η = 0.282 divided by 4.8 at 10%, $T = 10^5 + 1$ and ⌊10^4.15⌋+1 iterations, $n = 80$, "
            "2/η = 7.1; the paper's Figure 3 and Section 4 (ICML 2023); ResNet-18 on CIFAR-10, `0.467`, "
            "[a link](runs/9_of_14.json); data seeds 6–9.\n\n## 2. Phase maps\n\n"
            "```\nloss 0.467\n```\n\n## What the paper reports\n\ntest loss 0.467\n\n## Next\n\nplain\n"
            + MARKERS["findings"][0] + "\n9 of 14 diverged, test loss 0.467\n" + MARKERS["findings"][1])
    assert result_numbers(text) == []
