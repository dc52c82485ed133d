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
Every (run, seed) is one train.py process with its own run directory (a run of the results file is a setting over
seeds), under runs_dir, named by deep_nets.runs from train.py's flags: rerunning reuses the finished ones and
resumes the others, and deletes nothing.  Seeds follow the shared survivor policy (`seeds.train_until_survivors`);
the processes are started by the deep launcher (deep_nets.launch.run_here, shared with the sweep command) and read
back by deep_nets.runs.read_run.  `python -m largestep reproduce deep_mnist1d` (5-11 minutes here, 4 seeds; the
quick version under a minute); narrated in deep_nets/plot_feature_sparsity.ipynb.
Results that `python -m deep_nets.sweep --collect` writes are of this family too: their claims, and the paper's
values printed beside them, are in the companion module `cifar` (the paper's CIFAR grids).
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deep_nets.flags import GROUPED_MODELS, parse
from deep_nets.launch import PlannedRun, run_here
from deep_nets.runs import METRICS, read_run, run_dir, run_label, run_spec

from ..claims import Claim, medians_fall, seeds_below
from ..config import ConfigError, check_keys
from ..results import is_plain_name
from ..schedules import DeepScheduleNames
from ..seeds import SEED_POLICIES, Batch, run_record, train_seeds
from . import Experiment
from .cifar import content_claims, content_note, references  # noqa: F401  (the family's hooks for collected sweeps)


@dataclass(frozen=True)
class DeepRunSpec:
    key: str  # the run's name in claims ("small", "early", ...), whatever its schedule
    lr_schedule: str
    lr_init: float
    warmup_exp: float = 1.0
    warmup_factor: float = 1.0
    label: str = ""  # "" = derived from the schedule (deep_nets.runs.run_label), so that edits (--set) show


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
    runs_per_process: int = 1  # > 1: the runs of a batch share jobs processes, in groups of at most this many
    # (deep_nets.group: one stacked step for the group, each run its own directory), equal to the runs trained
    # alone up to float32 rounding
    seed_policy: str = "survivors"  # or "tries": n seeds tried per run whatever diverges (phase maps)

    def validate(self) -> None:
        """train.py's own rules on the exact arguments of every run (deep_nets.flags.parse), then, once, those that
        need the data set (a batch it can fill, memory): before any run starts."""
        from deep_nets.loop import check_data_fits  # torch: imported by the studies that run, not by listing

        check_keys(self.runs)
        if self.jobs < 1 or self.runs_per_process < 1:
            raise ConfigError(f"jobs and runs_per_process must be >= 1, got {self.jobs}, {self.runs_per_process}")
        if self.seed_policy not in SEED_POLICIES:
            raise ConfigError(f"seed_policy must be one of {', '.join(SEED_POLICIES)}, got {self.seed_policy!r}")
        if self.runs_per_process > 1 and self.model not in GROUPED_MODELS:
            raise ConfigError(f"runs_per_process > 1 needs a model without BatchNorm ({', '.join(GROUPED_MODELS)}), "
                              f"got {self.model}")
        if not self.runs_dir.strip() or not is_plain_name(Path(self.runs_dir).name):
            raise ConfigError(f"runs_dir must end in a plain folder name (letters, digits, '_', '-', '.'), "
                              f"got {self.runs_dir!r}")
        for k, run in enumerate(self.runs):
            if run.lr_schedule not in DeepScheduleNames():  # the field's name, where train.py would name its flag
                raise ConfigError(f"runs.{k}.lr_schedule: unknown schedule {run.lr_schedule!r} (known: "
                                  f"{', '.join(DeepScheduleNames())})")
            try:
                args = parse(self.argv(run, 0))
            except ConfigError as err:
                raise ConfigError(f"runs.{k} ({run.lr_schedule}, lr_init {run.lr_init}): train.py refuses it: {err}") \
                    from None
        data = _data_set(args)
        check_data_fits(args, data, "cpu")

    def labels(self) -> list[str]:
        return [run.label for run in self.runs if run.label]

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """Each train.py process holds one run and checks its own sizes (validate: on the data, once)."""
        return 0, "nothing"

    def quick(self) -> "DeepStudyConfig":
        """One epoch of each run (62 iterations, evaluated at 0, 31 and 62), sparsity on fewer examples, for CI
        (same figure): the quick study's processes then cost about as much as their evaluations."""
        return dataclasses.replace(self, epochs=1, eval_iter_freq=31, sparsity_examples=1000,
                                   runs_dir="runs/quick/deep_mnist1d")

    def argv(self, run: DeepRunSpec, seed: int) -> list[str]:
        """train.py's arguments for `run` and `seed`: one process, one thread, its run directory under runs_dir."""
        runs_dir = Path(self.runs_dir)
        return [f"--dataset={self.dataset}", f"--model={self.model}", f"--model_width={self.model_width}",
                f"--epochs={self.epochs}", f"--batch_size={self.batch_size}", f"--momentum={self.momentum}",
                f"--l2_reg={self.l2_reg}", "--no_data_augm", f"--eval_iter_freq={self.eval_iter_freq}",
                f"--sparsity_examples={self.sparsity_examples}", "--device=cpu", "--threads=1",
                f"--lr_schedule={run.lr_schedule}", f"--lr_init={run.lr_init}", f"--warmup_exp={run.warmup_exp}",
                f"--warmup_factor={run.warmup_factor}", f"--seed={seed}", f"--exp_name={runs_dir.name}",
                "--resume", f"--out_dir={runs_dir.parent}", f"--data_dir={self.data_dir}"]


def _data_set(args):
    from deep_nets.data import DataError, load_dataset

    try:
        return load_dataset(args.dataset, args.data_dir)
    except DataError as err:
        raise ConfigError(str(err)) from None


def run(config: DeepStudyConfig, n_seeds: int = 5, progress=None) -> dict:
    """Every (run, seed) as one train.py process in its run directory (deep_nets.launch.run_here, config.jobs at a
    time), seeds drawn by the shared survivor policy; the records read back by deep_nets.runs.read_run.  A run
    directory finished before is reused (run_here's outcome says so), not trained again."""
    start = time.perf_counter()
    grid_holder, processes = {}, {"trained": 0, "reused": 0}
    logs = Path(config.runs_dir).parent / "logs"

    def train_batch(run_ids, seeds):
        argvs = [config.argv(config.runs[r], int(s)) for r, s in zip(run_ids, seeds)]
        planned = [PlannedRun(argv, run_dir(vars(parse(argv)))) for argv in argvs]
        if progress is not None:  # one stop per train.py process, each a whole run
            progress.start_batch(len(planned), len(planned), len(planned), unit="runs")
        per_process = min(config.runs_per_process, -(-len(planned) // config.jobs))  # every slot busy
        outcomes = run_here(planned, config.jobs, logs, per_process=per_process,
                            on_done=None if progress is None else (lambda k, outcome: progress.advance(1)))
        failed = [(p, o) for p, o in zip(planned, outcomes) if o.failed]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(planned)} train.py runs failed; the first, "
                               f"{failed[0][0].directory}: {failed[0][1].reason} (log: {failed[0][1].log})")
        for outcome in outcomes:
            processes["reused" if outcome.reused else "trained"] += 1
        records = [read_run(p.directory) for p in planned]
        grid_holder["grid"] = records[0].grid
        curves = {m: np.stack([r.curves[m] for r in records]) for m in METRICS}
        return Batch(curves=curves, diverged=np.array([r.diverged for r in records]))

    rows, _ = train_seeds(config.seed_policy, train_batch, [True] * len(config.runs), n_seeds)
    iterations = int(grid_holder["grid"][-1])
    runs = []
    for spec, run_rows in zip(config.runs, rows):
        args = {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("label", "key")}
        runs.append(run_record(spec.key, spec.label or run_label(args), run_spec(args, iterations), run_rows,
                               grid_holder["grid"]))
    # a rerun reuses finished run directories: its time says so ("runs_reused")
    return {"runs": runs, "seconds": {"train": time.perf_counter() - start},
            "runs_trained": processes["trained"], "runs_reused": processes["reused"]}


def check(results: dict) -> None:
    """What the claims of collected sweeps read beyond the shared schema: each run's train.py flags."""
    from ..results import NotResults

    for k, run in enumerate(results["runs"]):
        flags = run.get("flags", {})
        if not isinstance(flags, dict):
            raise NotResults(f"field 'runs.{k}.flags' must be an object of train.py's flags, got {flags!r}")


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
