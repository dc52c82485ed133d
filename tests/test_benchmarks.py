"""The benchmark scripts README quotes still run against the package as it is now (they live apart from the tests and
reach into it, so a renamed function breaks them silently otherwise): each answers --help, and the cheapest one
prints what README reads off it."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.name for p in (ROOT / "benchmarks").glob("*.py") if "argparse" in p.read_text())


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_benchmarks_readme_names_exist():
    readme = (ROOT / "README.md").read_text()
    named = set(re.findall(r"\b(bench_\w+\.py)", readme))
    assert named and named <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_answers_help(script):
    out = _run(f"benchmarks/{script}", "--help")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:")


def test_bench_rank_splits_a_grid_points_metrics_into_its_parts():
    out = _run("benchmarks/bench_rank.py", "--only", "relu_two_layer", "--states", "2", "--repeats", "1")
    assert out.returncode == 0, out.stderr
    line = next(l for l in out.stdout.splitlines() if l.startswith("relu_two_layer"))
    parts = {k: float(v) for k, v in re.findall(r"(evaluate|factor|gram|eigvalsh) ([0-9.]+)", line)}
    assert set(parts) == {"evaluate", "factor", "gram", "eigvalsh"} and parts["evaluate"] > 0
    assert re.search(r"C=1 [0-9.]+, C=2 [0-9.]+", out.stdout)
    assert _run("benchmarks/bench_rank.py", "--states", "0").returncode == 2


def test_bench_experiments_refuses_a_compare_dir_without_the_package(tmp_path):
    # Python would find the installed package instead, and the "before" would be this tree timed against itself.
    out = _run("benchmarks/bench_experiments.py", "--compare", str(tmp_path), "--only", "diag_gd", "--skip-steps")
    assert out.returncode != 0 and "no largestep package there" in out.stderr and "diag_gd" not in out.stdout
