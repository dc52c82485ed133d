"""Which claims of a teacher-student experiment hold on every draw of the data, and which on some.

The paper shows each teacher-student experiment on one draw of its data (data seed 0 for the two-layer
net, 5 for the multi-layer one) and one training seed.  This study reruns an experiment's schedules on
several data draws (the paper's first, then further seeds drawn the same way), with many training seeds
each, and evaluates the experiment's claims on every draw.  Only the final metrics matter here, so the
runs record metrics at initialization and at the end alone (the training is unchanged by that: the same
steps, split at fewer points).  `python -m largestep reproduce relu_two_layer_draws relu_multi_layer_draws`
(seconds here, 10 surviving seeds per run and draw); narrated in fc_nets_two_layer.ipynb and
fc_nets_multi_layer.ipynb.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .. import claims
from ..claims import Claim
from ..config import ConfigError, to_dict
from ..schedules import Schedule
from ..plotting import figure_style, legend_below, run_colors, titled
from ..results import NotResults, fail, require, require_config, require_counts
from ..stats import counted, wilson_interval
from . import Experiment, relu


@dataclass(frozen=True)
class DataDrawsConfig:
    experiment: str  # the teacher-student experiment whose schedules and claims are studied
    data_seeds: tuple[int, ...]  # the first is the paper's draw
    quick_mode: bool = False  # the base experiment's quick() config (fewer iterations)

    def validate(self) -> None:
        if self.experiment not in BASES:
            raise ConfigError(f"experiment must be one of {', '.join(BASES)}, got {self.experiment!r}")
        if not self.data_seeds or any(s < 0 for s in self.data_seeds):
            raise ConfigError(f"data_seeds must list seeds >= 0, got {list(self.data_seeds)}")
        if len(set(self.data_seeds)) != len(self.data_seeds):
            raise ConfigError(f"data_seeds must not repeat, got {list(self.data_seeds)}")
        for data_seed in self.data_seeds:  # every draw, before any trains
            try:
                self.base_config(data_seed).validate()
            except ConfigError as err:
                raise ConfigError(f"data seed {data_seed}: {err}") from None

    def quick(self) -> "DataDrawsConfig":
        return dataclasses.replace(self, quick_mode=True)

    def labels(self) -> list[str]:
        return self.base_config(self.data_seeds[0]).labels()

    def memory(self, n_seeds: int) -> tuple[int, str]:
        """One draw trains at a time: the base experiment's round."""
        return self.base_config(self.data_seeds[0]).memory(n_seeds)

    def base_config(self, data_seed: int):
        base = BASES[self.experiment].config
        base = base.quick() if self.quick_mode else base
        return dataclasses.replace(base, data_seed=data_seed, grid_early=0, grid_spaced=2, sharpness_points=0)


BASES = {"relu_two_layer": relu.RELU_TWO_LAYER, "relu_multi_layer": relu.RELU_MULTI_LAYER}


def run(config: DataDrawsConfig, n_seeds: int = 10, progress=None) -> dict:
    """Every schedule of the base experiment on every data draw, n_seeds surviving seeds per run and draw."""
    runs, draws, seconds = [], [], {}
    base = BASES[config.experiment]
    for data_seed in config.data_seeds:
        results = relu.run(config.base_config(data_seed), n_seeds=n_seeds, progress=progress)
        results["config"] = to_dict(config.base_config(data_seed))
        for key, value in results["seconds"].items():
            seconds[key] = seconds.get(key, 0.0) + value
        for record in results["runs"]:
            record.pop("extras", None)  # first-layer weights etc.: the base experiment's figures show them
            runs.append({**record, "data_seed": data_seed, "schedule_label": record["label"],
                         "label": f"data {data_seed}: {record['label']}"})
        draws.append(_draw_record(data_seed, data_seed == config.data_seeds[0], results, base))
    return {"runs": runs, "draws": draws, "seconds": seconds}


FITS = f"every large-step run fits the training data (median train loss < {relu.UNDERFIT_LOSS:g})"


def _draw_record(data_seed: int, paper: bool, results: dict, base: Experiment) -> dict:
    """The claims on one draw: holds (True/False), or None where a run they compare has no surviving seed."""
    testable = all(not run["diverged"] for run in results["runs"])
    outcomes = [(v.text, v.holds if testable else None, v.numbers)
                for v in claims.evaluate(results, studied_claims(base))]
    train = [run["final_median"]["train_loss"] for run in results["runs"] if run["key"] != "small"]
    outcomes.append((FITS, bool(max(train) < relu.UNDERFIT_LOSS) if testable else None,
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


def headline(results: dict) -> str:
    """README's table row: on how many draws each claim holds."""
    untestable = sum(not d["testable"] for d in results["draws"])
    parts = [f"{holds} of {testable} draws: {claim}" for claim, holds, testable in claim_counts(results)]
    if untestable:
        parts.append(f"{untestable} of {len(results['draws'])} draws untestable (a run had no surviving seed)")
    return "; ".join(parts)


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
    metrics = ["test_loss"] + [m for m in runs[0]["final_median"] if m.startswith("feature_sparsity")]
    width = 0.8 / len(schedules)
    with figure_style():
        fig, axes = plt.subplots(1, len(metrics) + 1, figsize=(4.2 * (len(metrics) + 1), 3.9), layout="constrained")
        for ax, metric in zip(axes, metrics):
            for run in runs:
                j = schedules.index(run["schedule_label"])
                x = seeds.index(run["data_seed"]) + (j - (len(schedules) - 1) / 2) * width
                values = np.array([s[metric] for s in run["final_per_seed"]
                                   if counted(s) and s.get(metric) is not None], float)
                dead = np.array([s[metric] for s in run["final_per_seed"] if not s["diverged"] and s.get("collapsed")
                                 and s.get(metric) is not None], float)
                if dead.size:  # collapsed seeds (a dead layer), apart from the medians
                    ax.scatter(np.full(dead.size, x), dead, s=14, marker="x", color=colors[run["schedule_label"]],
                               lw=0.8)
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
            tried, lost = run["seeds_tried"], run["seeds_diverged"]
            low, high = wilson_interval(lost, tried) if tried else (0.0, 0.0)
            ax.bar(x, lost / max(tried, 1), width=width, color=colors[run["schedule_label"]])
            ax.plot([x, x], [low, high], color="0.25", lw=1)  # its 95% interval
        if not any(run["seeds_diverged"] for run in runs):
            tried = sum(run["seeds_tried"] for run in runs)
            ax.text(0.5, 0.75, f"no seed diverged\n(0 of {tried} tried)", transform=ax.transAxes, ha="center",
                    va="center", color="0.3")
        ax.set_ylim(0, 1)
        ax.set_title("seeds diverged (fraction, 95% interval)")
        for ax in axes:
            ax.set_xticks(range(len(seeds)), [f"{s}\n(paper)" if k == 0 else str(s) for k, s in enumerate(seeds)])
            ax.set_xlabel("data seed")
        for label, color in colors.items():
            axes[0].plot([], [], color=color, lw=2, label=label)
        legend_below(fig, *axes[0].get_legend_handles_labels(), most=4)
        base = BASES.get(results["config"]["experiment"])
        what = base.title if base is not None else results["config"]["experiment"]
        fig.suptitle(titled(results, f"{what}:\nevery schedule on {len(seeds)} data draws (data seed {seeds[0]} is "
                                     "the paper's)")
                     + f"\ndots: seeds that learned, x: collapsed seeds (a dead layer), bars: medians over the seeds "
                       f"that learned ({results['n_seeds']} survivors asked per run; conditioned on survival)",
                     fontsize=11)
    return {name: fig}


def _holds_on_every_draw(k: int):
    """The k-th claim of the draws' records holds on every draw where it can be tested (and one can)."""
    def check(results, others):
        draws = results["draws"]
        outcomes = [d["claims"][k]["holds"] for d in draws]
        testable = [h for h in outcomes if h is not None]
        cells = ", ".join(f"data {d['data_seed']}: {'untestable' if h is None else 'holds' if h else 'FAILS'}"
                          for d, h in zip(draws, outcomes))
        return bool(testable) and all(testable), f"{sum(testable)} of {len(testable)} testable draws ({cells})"
    return check


def studied_claims(base: Experiment) -> list:
    """The base experiment's claims that the study can test: those on the final metrics it records (not the
    sharpness, which it does not measure)."""
    return [claim for claim in base.claims if not claim.uses]


def draws_claims(base: Experiment) -> tuple:
    """The base experiment's claims, each over every draw where it can be tested (robust where the base
    claim is), and whether the large-step runs fit the data (reported: a draw can stall)."""
    chosen = studied_claims(base)
    kinds = [(claim.robust, claim.paper) for claim in chosen] + [(False, True)]
    texts = [claim.text for claim in chosen] + [FITS]
    return tuple(Claim(f"on every testable draw: {text}", robust, _holds_on_every_draw(k), paper=paper)
                 for k, (text, (robust, paper)) in enumerate(zip(texts, kinds)))


def check(results: dict) -> None:
    """The study's own fields, for `experiments.load`."""
    config = require_config(results, DataDrawsConfig)
    if config.experiment not in BASES:
        raise fail("config.experiment", f"one of {', '.join(BASES)}", config.experiment)
    for k, run in enumerate(results["runs"]):
        require(run, "data_seed", int, "a whole number", f"runs.{k}")
        require(run, "schedule_label", str, "a string", f"runs.{k}")
        require_config(run, Schedule, "schedule", f"runs.{k}")
    draws = results.get("draws")
    if not isinstance(draws, list) or not draws:
        raise fail("draws", "a non-empty list of draw records", draws)
    for k, run in enumerate(results["runs"]):
        if run["data_seed"] not in config.data_seeds:
            raise fail(f"runs.{k}.data_seed", f"one of config.data_seeds {list(config.data_seeds)}", run["data_seed"])
    for k, draw in enumerate(draws):
        at = f"draws.{k}"
        if not isinstance(draw, dict):
            raise fail(at, "an object", draw)
        require(draw, "data_seed", int, "a whole number", at)
        require(draw, "paper", bool, "true or false", at)
        require(draw, "testable", bool, "true or false", at)
        for name in ("survivors", "tried"):
            require_counts(draw, name, at)
        outcomes = require(draw, "claims", list, "a list of claim outcomes", at)
        if len(outcomes) != len(draws[0]["claims"]):
            raise NotResults(f"field '{at}.claims': every draw must record the same claims")
        for j, outcome in enumerate(outcomes):
            if not isinstance(outcome, dict):
                raise fail(f"{at}.claims.{j}", "an object", outcome)
            require(outcome, "claim", str, "a string", f"{at}.claims.{j}")
            require(outcome, "numbers", str, "a string", f"{at}.claims.{j}")
            if "holds" not in outcome or outcome["holds"] not in (True, False, None):
                raise fail(f"{at}.claims.{j}.holds", "true, false or null", outcome.get("holds"))


RELU_TWO_LAYER_DRAWS = Experiment(
    name="relu_two_layer_draws",
    title="relu_two_layer's schedules and claims on 5 data draws (the paper's and 4 more)",
    config=DataDrawsConfig("relu_two_layer", data_seeds=(0, 1, 2, 3, 4)),
    run=run,
    claims=draws_claims(relu.RELU_TWO_LAYER),
    notebook="fc_nets_two_layer.ipynb",
    seeds=10,
)

RELU_MULTI_LAYER_DRAWS = Experiment(
    name="relu_multi_layer_draws",
    title="relu_multi_layer's schedules and claims on 5 data draws (the paper's and 4 more)",
    config=DataDrawsConfig("relu_multi_layer", data_seeds=(5, 6, 7, 8, 9)),
    run=run,
    claims=draws_claims(relu.RELU_MULTI_LAYER),
    notebook="fc_nets_multi_layer.ipynb",
    seeds=10,
)
