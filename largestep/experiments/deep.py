"""`deep_mnist1d`: the deep-net protocol at CPU scale, through `deep_nets/train.py` and the shared records.

The paper's deep-net protocol (no explicit regularization: momentum 0, no weight decay, no augmentation)
on MNIST-1D with a 5-hidden-layer ReLU MLP (width 256), 100 epochs, batch 64: a small constant step that
still fits the training set, against a large step kept for the first 10/30/50% of training, then decayed.
Two families of decayed runs:
- the paper's `piecewise_0Xepochs` with warmup_exp = 1 (its linear branch, flat with warmup_factor = 1):
  the step after the decay is (f/0.5) lr/10, so the large step falls 50x, 16.7x or 10x — the runs differ
  in the length of the large-step phase *and* in the size of the decay;
- the control `step_0Xepochs`: the same large step, then lr/10 for every f — only the length differs
  (at 50% the paper's run already decays by 10, so the control adds the 10% and 30% runs).
Every run is one train.py process in its own run directory (kept under runs_dir: rerunning reuses the
complete ones and resumes the others, and deletes nothing); seeds follow the shared survivor policy
(`seeds.train_until_survivors`), and the records are read back by `deep_runs.read_run`.
"""
from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..claims import Claim, medians_fall, seeds_below
from ..config import ConfigError, check_keys
from ..deep_runs import METRICS, read_run, run_label, run_spec
from ..schedules import DEEP_SCHEDULES, deep_schedule
from ..seeds import Batch, run_record, train_until_survivors
from . import Experiment

TRAIN_PY = Path(__file__).resolve().parents[2] / "deep_nets" / "train.py"


@dataclass(frozen=True)
class DeepRunSpec:
    key: str  # the run's name in claims ("small", "early", ...), whatever its schedule
    lr_schedule: str
    lr_init: float
    warmup_exp: float = 1.0
    warmup_factor: float = 1.0
    label: str = ""  # "" = derived from the schedule (name, step, first decay), so that edits (--set) show


@dataclass(frozen=True)
class DeepStudyConfig:
    runs: tuple[DeepRunSpec, ...]
    dataset: str = "mnist1d"
    model: str = "mlp"
    model_width: int = 256
    epochs: int = 100
    batch_size: int = 64
    momentum: float = 0.0
    l2_reg: float = 0.0
    eval_iter_freq: int = 200
    runs_dir: str = "runs/deep_mnist1d"  # run directories (git-ignored), reused and resumed by reruns
    data_dir: str = "data"  # the generated mnist1d set is cached here
    sparsity_examples: int = 10752  # train.py's fixed examples for train metrics and feature sparsity
    jobs: int = 2  # train.py processes at a time, one thread each

    def validate(self) -> None:
        check_keys(self.runs)
        for run in self.runs:
            if run.lr_schedule not in DEEP_SCHEDULES:
                raise ConfigError(f"unknown lr_schedule {run.lr_schedule!r} (known: {', '.join(DEEP_SCHEDULES)})")
            deep_schedule(run.lr_schedule, run.lr_init, run.warmup_factor, run.warmup_exp)
        for name in ("model_width", "epochs", "batch_size", "eval_iter_freq", "sparsity_examples", "jobs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (0 <= self.momentum < 1) or not (self.l2_reg >= 0):
            raise ConfigError(f"momentum must lie in [0, 1) and l2_reg be >= 0, got {self.momentum}, {self.l2_reg}")
        if not self.runs_dir:
            raise ConfigError("runs_dir must name a directory")
        if not TRAIN_PY.is_file():
            raise ConfigError(f"{TRAIN_PY.name} not found beside the package: run from a checkout of the repository")

    def labels(self) -> list[str]:
        return [run.label for run in self.runs if run.label]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """Each train.py process holds one run and checks its own sizes; nothing is held here."""
        return 0, "nothing"

    def quick(self) -> "DeepStudyConfig":
        """Two epochs of each run, sparsity on fewer examples, for CI (same figure)."""
        return dataclasses.replace(self, epochs=2, eval_iter_freq=31, sparsity_examples=1000,
                                   runs_dir="runs/quick/deep_mnist1d")

    def group(self, run: DeepRunSpec, seed: int) -> str:
        """The directory (train.py's --exp_name) that holds the one run directory of (run, seed)."""
        return f"{run.lr_schedule}_lr{run.lr_init:g}_wexp{run.warmup_exp:g}_wf{run.warmup_factor:g}_seed{seed}"

    def command(self, run: DeepRunSpec, seed: int) -> list[str]:
        return [sys.executable, str(TRAIN_PY), f"--dataset={self.dataset}", f"--model={self.model}",
                f"--model_width={self.model_width}", f"--epochs={self.epochs}", f"--batch_size={self.batch_size}",
                f"--momentum={self.momentum}", f"--l2_reg={self.l2_reg}", "--no_data_augm",
                f"--eval_iter_freq={self.eval_iter_freq}", f"--sparsity_examples={self.sparsity_examples}",
                "--device=cpu", "--threads=1",
                f"--lr_schedule={run.lr_schedule}", f"--lr_init={run.lr_init}", f"--warmup_exp={run.warmup_exp}",
                f"--warmup_factor={run.warmup_factor}", f"--seed={seed}", f"--exp_name={self.group(run, seed)}",
                "--resume",
                f"--out_dir={self.runs_dir}", f"--data_dir={self.data_dir}"]


def _train_one(config: DeepStudyConfig, run: DeepRunSpec, seed: int):
    """One train.py process; returns its run directory's record and whether train.py found the run already
    finished (complete or diverged) and reused it.  Exit 1 is train.py's 'diverged'."""
    log = subprocess.run(config.command(run, seed), capture_output=True, text=True)
    if log.returncode not in (0, 1):
        raise RuntimeError(f"train.py failed for {run.lr_schedule} lr={run.lr_init} seed {seed} "
                           f"(exit {log.returncode}):\n{log.stderr[-2000:]}")
    directories = [p for p in (Path(config.runs_dir) / config.group(run, seed)).iterdir() if p.is_dir()]
    if len(directories) != 1:
        raise RuntimeError(f"{Path(config.runs_dir) / config.group(run, seed)}: expected one run directory, "
                           f"found {len(directories)}")
    reused = "already complete" in log.stdout or "nothing to resume" in log.stdout
    return read_run(directories[0]), reused


def run(config: DeepStudyConfig, n_seeds: int = 5, progress=None) -> dict:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(TRAIN_PY), "--help"], check=True, capture_output=True)  # fail fast
    grid_holder, processes = {}, {"trained": 0, "reused": 0}

    def train_batch(run_ids, seeds):
        if progress is not None:  # one stop per train.py process, each a whole run
            progress.start_batch(len(seeds), len(seeds), len(seeds), unit="runs")

        def one(job):
            record = _train_one(config, config.runs[job[0]], int(job[1]))
            if progress is not None:
                progress.advance(1)
            return record

        with ThreadPoolExecutor(config.jobs) as pool:
            outcomes = list(pool.map(one, zip(run_ids, seeds)))
        records = [record for record, _ in outcomes]
        for _, reused in outcomes:
            processes["reused" if reused else "trained"] += 1
        grid_holder["grid"] = records[0].grid
        curves = {m: np.stack([r.curves[m] for r in records]) for m in METRICS}
        return Batch(curves=curves, diverged=np.array([r.diverged for r in records]))

    rows, _ = train_until_survivors(train_batch, [True] * len(config.runs), n_seeds)
    iterations = int(grid_holder["grid"][-1])
    runs = []
    for spec, run_rows in zip(config.runs, rows):
        args = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("label", "key")}
        runs.append(run_record(spec.key, spec.label or run_label(args), run_spec(args, iterations), run_rows,
                               grid_holder["grid"]))
    # a rerun reuses finished run directories: its time says so ("runs_reused")
    return {"runs": runs, "seconds": {"train": time.perf_counter() - start},
            "runs_trained": processes["trained"], "runs_reused": processes["reused"]}


def figures(results: dict) -> dict:
    """Test error (its axis fitted to the curves after the first 10% of training, where the schedules part),
    train loss and each block's feature sparsity; the equal-decay control runs dashed."""
    from ..plotting import panels

    styles = {run["key"]: "--" for run in results["runs"] if run.get("key", "").startswith("control")}
    specs = [{"metric": "test_err", "title": "test error (axis: after 10% of training)", "zoom_after": 0.1},
             {"metric": "train_loss", "log": True, "title": "train loss (fixed training subset)"},
             *({"metric": f"feature_sparsity_block{b}", "title": f"feature sparsity, block {b} (lower: sparser)"}
               for b in range(1, 6))]
    specs = [{**s, "styles": styles} for s in specs if any(s["metric"] in r["curves"] for r in results["runs"])]
    title = TITLE if results["experiment"] == "deep_mnist1d" else \
        f"{results['experiment']}: train.py runs collected from {results['config'].get('collected_from', '?')}"
    return {results["experiment"]: panels(results, specs, ncols=4, suptitle=title)}


TITLE = ("5-layer ReLU MLP on MNIST-1D: small constant step vs large step kept for 10/30/50% "
         "(paper's decays: ÷50/÷16.7/÷10; control, dashed: ÷10 for all)")
SMALL_LR = 0.05  # fits the training set (0 training errors by epoch 30): see docs/deep_nets.md
LARGE_LR = 0.6  # the largest constant step of a sweep that trained 50 epochs stably (docs/deep_nets.md)

LARGE = ["early", "middle", "late", "control_early", "control_middle"]

DEEP_MNIST1D = Experiment(
    name="deep_mnist1d",
    title="deep_nets/train.py at CPU scale: MLP on MNIST-1D, the paper's decays and an equal-decay control",
    config=DeepStudyConfig(runs=(
        DeepRunSpec("small", "constant", SMALL_LR),
        *(DeepRunSpec(key, f"piecewise_0{f}epochs", LARGE_LR) for key, f in (("early", 1), ("middle", 3), ("late", 5))),
        # the control at 50% would be the paper's 50% run again: its decay already is ÷10
        *(DeepRunSpec(key, f"step_0{f}epochs", LARGE_LR) for key, f in (("control_early", 1), ("control_middle", 3))),
    )),
    run=run,
    claims=(
        Claim("every large-step run ends with a lower test error than the small constant step, in every seed", True,
              seeds_below("test_err", LARGE, "small")),
        *(Claim(f"every large-step run ends with sparser block-{b} features than the small step, in every seed", True,
                seeds_below(f"feature_sparsity_block{b}", LARGE, "small")) for b in (2, 3, 4, 5)),
        Claim("control (equal ÷10 decays): a {control_middle.at} large-step phase ends with sparser block-4 features "
              "than a {control_early.at} one, in every seed", True,
              seeds_below("feature_sparsity_block4", "control_middle", "control_early")),
        Claim("control: block-4 sparsity falls with the length of the large-step phase, {control_early.at} > "
              "{control_middle.at} > {late.at} (median)", False,
              medians_fall("feature_sparsity_block4", ["control_early", "control_middle", "late"])),
        Claim("the paper's schedules: test error falls with the decay point, {early.at} > {middle.at} > {late.at} "
              "(median)", False, medians_fall("test_err", ["early", "middle", "late"])),
        Claim("control: test error falls with the length of the large-step phase, {control_early.at} > "
              "{control_middle.at} > {late.at} (median)", False,
              medians_fall("test_err", ["control_early", "control_middle", "late"])),
    ),
    notebook="deep_nets/plot_feature_sparsity.ipynb",
    headline=("test_err", "feature_sparsity_block4"),
    seeds=4,
    on_request=True,
)
