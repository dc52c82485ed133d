"""The paper's CIFAR sweeps, collected: `check` finds the paper's runs by their schedule and regularization,
states its claims on them and prints the paper's one-seed values beside the medians.  Run trees are written here
by hand in the format deep_nets/runs.py writes (config.json, metrics.jsonl under <exp_name>/<run name>/), with
final values chosen to agree or disagree with the paper; one tiny tree is trained for real and collected by the
sweep command."""
import json
import re
from pathlib import Path


from deep_nets import runs as dn_runs
from deep_nets import sweep
from largestep.__main__ import main
from largestep.claims import NOT_ROBUST
from largestep.experiments import cifar
from largestep.results import save_json

ROOT = Path(__file__).resolve().parents[1]
PAPER = {"dataset": "cifar10", "model": "resnet18_plain", "model_width": 64, "epochs": 100, "batch_size": 256}
ITERATIONS = 100 * (50_000 // 256)
# each role's flags as the paper's grids write them
FLAGS = {
    ("sota", "small"): {"lr_schedule": "constant", "lr_init": 0.002},
    ("sota", "decay10"): {"lr_schedule": "piecewise_01epochs", "lr_init": 0.05},
    ("sota", "decay30"): {"lr_schedule": "piecewise_03epochs", "lr_init": 0.05},
    ("sota", "decay50"): {"lr_schedule": "piecewise_05epochs", "lr_init": 0.05},
    ("no_explicit_reg", "small"): {"lr_schedule": "constant", "lr_init": 0.01},
    ("no_explicit_reg", "large"): {"lr_schedule": "piecewise_05epochs", "lr_init": 0.75, "warmup_exp": 1.05},
}
REGULARIZATION = {"sota": {"momentum": 0.9, "l2_reg": 5e-4},
                  "no_explicit_reg": {"momentum": 0.0, "l2_reg": 0.0, "no_data_augm": True}}


def write_run(root: Path, role: tuple, seed: int, final: dict, **changed) -> Path:
    """One finished run directory of `role`: config.json and two evaluations, the last holding `final`."""
    args = {**dn_runs.defaults(), **PAPER, **REGULARIZATION[role[0]], **FLAGS[role], "seed": seed,
            "out_dir": str(root), "exp_name": role[0], **changed}
    directory = dn_runs.run_dir(args)
    directory.mkdir(parents=True)
    dn_runs.write_config({"args": args, "run_name": dn_runs.run_name(args), "identity": dn_runs.identity(args),
                          "iterations": ITERATIONS, "data": {"name": args["dataset"], "digest": "0" * 64}}, directory)
    first = {m: 1.0 for m in cifar.METRICS}
    (directory / "metrics.jsonl").write_text(
        dn_runs.metrics_line({"iteration": 0, **first, "diverged": False})
        + dn_runs.metrics_line({"iteration": ITERATIONS, **final, "diverged": False}))
    return directory


def paper_like(role: tuple, seed: int) -> dict:
    """The paper's value for the role, moved a little by the seed (seed 1: the paper's own)."""
    if role in cifar.REFERENCE:
        values = cifar.REFERENCE[role]
    else:  # no table for this setting: Figure 1's rough errors
        values = (0.01, 0.35 if role[1] == "small" else 0.12, 0.7, 0.7, 0.7, 0.6, 0.9)
    return {m: v * (1 + 0.01 * (seed - 1)) for m, v in zip(cifar.METRICS, values)}


def tree(root: Path, change=lambda role, seed, final: final) -> Path:
    for role in FLAGS:
        for seed in range(3):
            write_run(root, role, seed, change(role, seed, paper_like(role, seed)))
    return root


def collected(root: Path, tmp_path: Path, name: str = "paper_cifar10") -> Path:
    path = tmp_path / f"{name}.json"
    save_json(dn_runs.collect_runs(root, name), path)
    return path


def check(path, capsys) -> tuple[int, str]:
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    return code, out + err


def test_runs_in_the_papers_settings_agree_pass_with_the_papers_values_beside(tmp_path, capsys):
    code, out = check(collected(tree(tmp_path / "runs"), tmp_path), capsys)
    print(out)
    assert code == 0
    assert "paper_cifar10 claims: 2 of 2 robust claims pass; 4 of 4 reported claims (not robust) hold" in out
    assert out.count("  PASS  [robust]") == 2 and out.count(f"  PASS  [{NOT_ROBUST}]") == 4
    assert "basis: the paper's ordering, one seed: 10.13% > 6.58% > 5.61%" in out
    assert "ONE seed" in out and "tml-epfl/sgd-sparse-features" in out
    # yours (median: seed 1, the paper's value) beside the paper's, for the matching run
    lines = out.splitlines()
    at = next(k for k, line in enumerate(lines) if line.startswith("  η=0.05, decay at 30% yours"))
    assert lines[at].split()[-9:] == ["3", "seeds", "0.00098", "6.58%", "0.723", "0.587", "0.657", "0.472", "0.770"]
    assert lines[at + 1].split() == ["paper", "1", "seed", "0.00098", "6.58%", "0.723", "0.587", "0.657", "0.472",
                                     "0.770"]
    assert "block 1 is reported, not claimed" in out
    assert "differ from the paper's" not in out
    assert out.count("        basis: ") == 6  # every claim says what its kind rests on


def test_notebooks_print_the_same_claims_and_values(tmp_path, capsys):
    from largestep import experiments

    path = collected(tree(tmp_path / "runs"), tmp_path)
    _, expected = check(path, capsys)
    experiments.print_claims(experiments.load(path))
    assert capsys.readouterr().out == expected


def test_runs_that_disagree_fail_and_exit_1(tmp_path, capsys):
    def worse(role, seed, final):
        if role == ("sota", "decay10") and seed == 0:  # one seed of a large-step run behind the small step
            final["test_err"] = 0.20
        if role == ("sota", "decay50"):  # 50% behind 30% in every seed and in blocks 3-5
            final = {m: v * 1.3 for m, v in final.items()}
        return final
    code, out = check(collected(tree(tmp_path / "runs", worse), tmp_path), capsys)
    print(out)
    assert code == 1
    assert "paper_cifar10 claims: 1 of 2 robust claims pass; 0 of 4 reported claims (not robust) hold" in out
    assert re.search(r"FAIL  \[robust\] SOTA setting: every large-step run .*\n.*highest 0.2 vs lowest 0.141", out)
    assert out.count(f"  FAIL  [{NOT_ROBUST}]") == 4
    assert "PASS  [robust] no explicit regularization" in out


def test_runs_are_found_by_their_schedule_not_their_position_or_key(tmp_path, capsys):
    results = dn_runs.collect_runs(tree(tmp_path / "runs"), "paper_cifar10")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    save_json(results, first)
    for k, run in enumerate(results["runs"]):
        run["key"] = f"run{k}"
    results["runs"].reverse()
    save_json(results, second)
    expected = check(first, capsys)
    assert "PASS" in expected[1] and check(second, capsys) == expected


def test_a_missing_or_doubled_run_is_not_evaluated_and_other_settings_are_said(tmp_path, capsys):
    root = tmp_path / "runs"
    for seed in range(2):
        for role in [("sota", "decay10"), ("sota", "decay30"), ("sota", "decay50")]:
            write_run(root, role, seed, paper_like(role, seed), dataset="cifar100")
        write_run(root, ("sota", "decay50"), seed, paper_like(("sota", "decay50"), seed), dataset="cifar100",
                  model_width=32)
    code, out = check(collected(root, tmp_path, "paper_cifar100"), capsys)
    print(out)
    assert code == 0  # nothing robust failed; what cannot be evaluated is said
    assert "no run of these results is the paper's η=0.002 constant" in out
    assert "2 runs are the paper's η=0.05, decay at 50%" in out
    assert "model_width 32 (the paper's: 64)" in out
    assert "none shown, the paper's values are for cifar10 and these runs are on cifar100" in out
    assert "no explicit regularization" not in out  # no run of that setting: no claim of it


def test_bad_results_are_exit_2(tmp_path, capsys):
    path = collected(tree(tmp_path / "runs"), tmp_path)
    results = json.loads(path.read_text())
    results["runs"][0]["flags"] = "momentum 0.9"
    path.write_text(json.dumps(results))
    code, out = check(path, capsys)
    assert code == 2 and out.strip() == (f"error: {path}: field 'runs.0.flags' must be an object of train.py's "
                                         "flags, got 'momentum 0.9'")


def test_a_sweep_of_other_runs_states_no_claims(tmp_path, capsys):
    root = tmp_path / "runs"
    for seed in range(2):
        write_run(root, ("sota", "small"), seed, paper_like(("sota", "small"), seed), lr_init=0.003)
    code, out = check(collected(root, tmp_path, "mine"), capsys)
    assert code == 0 and out.strip() == "mine: no claims stated for these results"


def test_docs_show_the_papers_table_as_the_package_holds_it():
    text = (ROOT / "docs" / "cifar.md").read_text()
    assert cifar.reference_markdown() in text
    assert "](cifar.md)" in (ROOT / "docs" / "deep_nets.md").read_text()


def test_collect_then_check_on_tiny_trained_runs(tmp_path, capsys, monkeypatch):
    """The SOTA setting's schedules on a tiny MLP and generated data, trained for real (in this process, each with
    the arguments the sweep gives it), collected by the sweep command and checked."""
    from deep_nets import train as dn_train
    from largestep.experiments import deep

    # drawing the figures (tests/test_deep_sweep.py) would take most of this test's seconds: the results file is enough
    monkeypatch.setattr(deep, "figures", lambda results: {})

    out = tmp_path / "sweep"
    grid = tmp_path / "tiny_sota.toml"
    grid.write_text(f"""out_dir = "{out}"
[flags]
dataset = "synthetic"
model = "mlp"
model_width = 8
epochs = 1
batch_size = 64
eval_iter_freq = 16
sparsity_examples = 128
sparsity_neurons = 64
bn_refresh_examples = 64
device = "cpu"
momentum = 0.9
l2_reg = 5e-4
exp_name = "sota"
[[setting]]
lr_schedule = ["piecewise_01epochs", "piecewise_03epochs", "piecewise_05epochs"]
lr_init = 0.05
[[setting]]
lr_schedule = "constant"
lr_init = 0.002
""")
    for run in sweep.plan(sweep.expand(sweep.read_grid(grid), "grid"), out, "grid"):
        assert dn_train.main(run.argv) == 0
    capsys.readouterr()
    assert sweep.main([str(grid), "--collect"]) == 0
    code, text = check(out / "tiny_sota.json", capsys)
    print(text)
    assert "tiny_sota claims: " in text and "(these runs differ from the paper's: dataset synthetic" in text
    assert text.count("  PASS  ") + text.count("  FAIL  ") == 5 and "n/a" not in text
    assert code == (1 if "FAIL  [robust]" in text else 0)
    assert "none shown, the paper's values are for cifar10 and these runs are on synthetic" in text
