"""Which claims of a teacher-student experiment hold on every draw of the data, and which on some.

The paper shows each teacher-student experiment on one draw of its data (data seed 0 for the two-layer
net, 5 for the multi-layer one) and one training seed.  This study reruns an experiment's schedules on
several data draws (the paper's first, then further seeds drawn the same way), with many training seeds
each, and evaluates the experiment's claims on every draw.  Only the final metrics matter here, so the
runs record metrics at initialization and at the end alone (the training is unchanged by that: the same
steps, split at fewer points).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..plotting import figure_style, panel_layout, run_colors, titled
from ..config import ConfigError
from . import Experiment, get
from . import relu


@dataclass(frozen=True)
class DataDrawsConfig:
    experiment: str  # the teacher-student experiment whose schedules and claims are studied
    data_seeds: tuple[int, ...]  # the first is the paper's draw
    seeds_per_run: int = 10  # surviving training seeds asked for per run and draw (the claims need many)
    quick_mode: bool = False  # the base experiment's quick() config (fewer iterations)

    def validate(self) -> None:
        if self.experiment not in ("relu_two_layer", "relu_multi_layer"):
            raise ConfigError(f"experiment must be 'relu_two_layer' or 'relu_multi_layer', got {self.experiment!r}")
        if not self.data_seeds or any(s < 0 for s in self.data_seeds):
            raise ConfigError(f"data_seeds must list seeds >= 0, got {list(self.data_seeds)}")
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise ConfigError(f"data_seeds must not repeat, got {list(self.data_seeds)}")
        if self.seeds_per_run < 1:
            raise ConfigError(f"seeds_per_run must be >= 1, got {self.seeds_per_run}")
        self.base_config(self.data_seeds[0]).validate()

    def quick(self) -> "DataDrawsConfig":
        return dataclasses.replace(self, quick_mode=True, seeds_per_run=min(self.seeds_per_run, 3))

    def trained_config(self, n_seeds: int):
        """What one round trains (for the memory check): the first draw's config, seeds_per_run seeds."""
        return self.base_config(self.data_seeds[0]), self.seeds_per_run

    def base_config(self, data_seed: int):
        base = get(self.experiment).config
        base = base.quick() if self.quick_mode else base
        return dataclasses.replace(base, data_seed=data_seed, grid_early=0, grid_spaced=2)


def run(config: DataDrawsConfig, n_seeds: int = 5, progress=None) -> dict:
    """Every schedule of the base experiment on every data draw; `n_seeds` is not used (seeds_per_run is)."""
    config.validate()
    runs, draws, seconds = [], [], {}
    for data_seed in config.data_seeds:
        results = relu.run(config.base_config(data_seed), n_seeds=config.seeds_per_run, progress=progress)
        results["experiment"] = config.experiment
        for key, value in results["seconds"].items():
            seconds[key] = seconds.get(key, 0.0) + value
        for record in results["runs"]:
            record.pop("extras", None)  # first-layer weights etc.: the base experiment's figures show them
            runs.append({**record, "data_seed": data_seed, "schedule_label": record["label"],
                         "label": f"data {data_seed}: {record['label']}"})
        draws.append(_draw_record(data_seed, data_seed == config.data_seeds[0], results))
    return {"n_seeds": config.seeds_per_run, "runs": runs, "draws": draws, "seconds": seconds}


def _draw_record(data_seed: int, paper: bool, results: dict) -> dict:
    """The claims on one draw: holds (True/False), or None where a run they compare has no surviving seed."""
    testable = all(not run["diverged"] for run in results["runs"])
    outcomes = [(v.claim.text, v.holds if testable else None, v.numbers) for v in claims.evaluate(results)]
    train = [run["final_median"]["train_loss"] for run in results["runs"][1:]]
    outcomes.append((f"every large-step run fits the training data (median train loss < {claims.UNDERFIT_LOSS:g})",
                     bool(max(train) < claims.UNDERFIT_LOSS) if testable else None,
                     "median train loss " + ", ".join(f"{v:.2g}" for v in train)))
    return {"data_seed": data_seed, "paper": paper, "testable": testable,
            "survivors": [run["seeds_tried"] - run["seeds_diverged"] for run in results["runs"]],
            "tried": [run["seeds_tried"] for run in results["runs"]],
            "claims": [{"claim": c, "holds": h, "numbers": n} for c, h, n in outcomes]}


def claim_counts(results: dict) -> list[tuple[str, int, int]]:
    """(claim, number of draws on which it holds, number of testable draws) for each claim."""
    draws = results["draws"]
    testable = sum(d["testable"] for d in draws)
    return [(first["claim"], sum(bool(d["claims"][k]["holds"]) for d in draws), testable)
            for k, first in enumerate(draws[0]["claims"])]


def claims_table(results: dict) -> str:
    """Each claim with its outcome on every draw and the count of testable draws on which it holds.

    A draw is untestable ('-') when some run has no surviving seed (at edge-of-stability step sizes every
    seed can diverge on some data).
    """
    draws = results["draws"]
    lines = [f"claims of {results['config']['experiment']} on {len(draws)} data draws "
             f"(data seed {draws[0]['data_seed']} is the paper's; {results['n_seeds']} surviving seeds asked "
             "per run and draw; '-': a run has no surviving seed):"]
    for k, (claim, holds, n_testable) in enumerate(claim_counts(results)):
        outcomes = [d["claims"][k]["holds"] for d in draws]
        cells = " ".join(f"{d['data_seed']}:{'-' if h is None else 'yes' if h else 'NO'}" for d, h in zip(draws, outcomes))
        lines.append(f"  {holds} of {n_testable}  {claim}   [{cells}]")
    for d in draws:
        lines.append(f"  data {d['data_seed']}{' (paper)' if d['paper'] else ''}: surviving seeds per run "
                     + ", ".join(f"{s}/{t}" for s, t in zip(d["survivors"], d["tried"])))
    return "\n".join(lines)


def figures(results: dict) -> dict:
    import matplotlib.pyplot as plt

    name = results["experiment"]
    runs = results["runs"]
    seeds = results["config"]["data_seeds"]
    schedules = list(dict.fromkeys(r["schedule_label"] for r in runs))
    colors = dict(zip(schedules, run_colors(len(schedules))))
    metrics = ["test_loss"] + [m for m in runs[0]["final"] if m.startswith("feature_sparsity")]
    width = 0.8 / len(schedules)
    with figure_style():
        fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.2 * (len(metrics) + 1), 3.9), layout=panel_layout())
        for ax, metric in zip(axes, metrics):
            for run in runs:
                j = schedules.index(run["schedule_label"])
                x = seeds.index(run["data_seed"]) + (j - (len(schedules) - 1) / 2) * width
                values = np.array([s[metric] for s in run["final_per_seed"]
                                   if not s["diverged"] and s.get(metric) is not None], float)
                if values.size:
                    ax.scatter(np.full(values.size, x), values, s=7, color=colors[run["schedule_label"]], alpha=0.6,
                               lw=0)
                    ax.plot([x - width / 2, x + width / 2], [np.median(values)] * 2, color=colors[run["schedule_label"]],
                            lw=2)
            if metric == "test_loss":
                ax.set_yscale("log")
            ax.set_title(metric.replace("_", " ") + (" (lower is sparser)" if "sparsity" in metric else ""))
        ax = axes[-1]
        for run in runs:
            j = schedules.index(run["schedule_label"])
            x = seeds.index(run["data_seed"]) + (j - (len(schedules) - 1) / 2) * width
            ax.bar(x, run["seeds_diverged"] / max(run["seeds_tried"], 1), width=width,
                   color=colors[run["schedule_label"]])
        ax.set_ylim(0, 1)
        ax.set_title("fraction of training seeds diverged")
        for ax in axes:
            ax.set_xticks(range(len(seeds)), [f"{s}\n(paper)" if k == 0 else str(s) for k, s in enumerate(seeds)])
            ax.set_xlabel("data seed")
        for label, color in colors.items():
            axes[0].plot([], [], color=color, lw=2, label=label)
        fig.legend(loc="lower center", ncol=min(len(schedules), 4), frameon=False)
        fig.suptitle(titled(results, f"{results['config']['experiment']}: every schedule on {len(seeds)} data draws "
                                     f"(data seed {seeds[0]} is the paper's)")
                     + f"\ndots: surviving seeds, bars: medians ({results['n_seeds']} survivors asked per run); "
                       "statistics are conditioned on survival", fontsize=11)
    return {name: fig}


RELU_TWO_LAYER_DRAWS = Experiment(
    name="relu_two_layer_draws",
    title="relu_two_layer's schedules and claims on 5 data draws (the paper's and 4 more)",
    config=DataDrawsConfig("relu_two_layer", data_seeds=(0, 1, 2, 3, 4)),
    run=run,
    figures=figures,
)

RELU_MULTI_LAYER_DRAWS = Experiment(
    name="relu_multi_layer_draws",
    title="relu_multi_layer's schedules and claims on 5 data draws (the paper's and 4 more)",
    config=DataDrawsConfig("relu_multi_layer", data_seeds=(5, 6, 7, 8, 9)),
    run=run,
    figures=figures,
)
