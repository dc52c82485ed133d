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


def _bench_vs_paper():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import bench_vs_paper
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return bench_vs_paper


def test_bench_vs_paper_needs_a_checkout_of_the_papers_repository(tmp_path, capsys):
    # the project ships none of the paper's code: without a checkout there is nothing to time, said in one line
    out = _run("benchmarks/bench_vs_paper.py")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr.count("\n") == 1 and "--paper-dir DIR is required" in out.stderr
    bench = _bench_vs_paper()
    assert bench.main(["--paper-dir", str(tmp_path / "nowhere")]) == 2
    assert "no such directory" in capsys.readouterr().err
    (tmp_path / "diag_nets.py").write_text("def GD(): pass\n")  # a file of that name, not the paper's
    for name in ("fc_nets.py", "utils.py"):
        (tmp_path / name).write_text("")
    assert bench.main(["--paper-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a checkout of tml-epfl/sgd-sparse-features (diag_nets.py lacks def SGD)" in err
    assert set(bench.PAPER_FILES) == {"diag_nets.py", "fc_nets.py", "utils.py"}


def test_bench_vs_paper_table_medians_ratios_and_lower_bounds():
    bench = _bench_vs_paper()
    turns = lambda *pairs: [{"wall": w, "computation": c} for w, c in pairs]
    svd = {"run": "late", "error": "diag_nets.compute_grad_matrix_ranks: LinAlgError: SVD did not converge"}
    lines = bench.table([
        {"name": "diag_gd", "paper": turns((30, 20), (10, 8), (20, 10)), "ours": turns((2, 1), (4, 2), (9, 5)),
         "crashes": []},
        {"name": "diag_sgd", "paper": turns((50, 40)), "ours": turns((5, 2)),
         "crashes": [svd, svd]},
    ])
    assert lines[0].split() == ["experiment", "paper", "whole", "ours", "whole", "ratio", "paper", "comp", "ours",
                                "comp", "ratio", "repeats"]
    # medians 20 / 4 and 10 / 2, each side's median on its own
    assert lines[1].split() == ["diag_gd", "20.00", "s", "4.00", "s", "5.0x", "10.00", "s", "2.00", "s", "5.0x", "3"]
    assert lines[2].split() == ["diag_sgd", "50.00", "s", "5.00", "s", ">=10.0x", "40.00", "s", "2.00", "s",
                                ">=20.0x", "1"]
    assert len(lines) == 4  # the same crash in two turns is one note
    assert "diag_sgd: the paper's code raised in run late: diag_nets.compute_grad_matrix_ranks: LinAlgError: SVD " \
           "did not converge" in lines[3] and "lower bound" in lines[3]


def test_bench_vs_paper_hands_the_paper_our_schedules():
    bench = _bench_vs_paper()
    spec, arrays = bench.paper_inputs("relu_multi_layer", quick=True)
    small, early = spec["runs"][0], spec["runs"][1]
    # the paper's warmup: step x (1 + (max - 1) (t/T)**exponent); ours: 1 + gain (t/T)**power, gain 5, power 0.5
    assert (early["warmup_until"], early["warmup_max"], early["warmup_exponent"]) == (0.1, 6.0, 0.5)
    assert early["decays"] == [[0.1, 3.5]] and small["decays"] == [[0.0, 1.0]] and small["warmup_until"] == 0.0
    assert {r["seed"] for r in spec["runs"]} == {5}  # the seed the paper's notebook sets
    assert arrays["x_rank"].shape[0] == 10 * 5 + 10 + 10 * 10 + 10 + 10 + 1  # as many points as parameters
    spec, _ = bench.paper_inputs("relu_1d", quick=True)
    assert [(r["warmup_max"], r["warmup_exponent"]) for r in spec["runs"]] == [(8.0, 1.0), (200.0, 1.0)]
