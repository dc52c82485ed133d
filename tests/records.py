"""Hand-made results records that follow the results schema, for tests of the readers (claims, summaries,
tables, the command line) on numbers chosen by hand."""
from __future__ import annotations

import math


def run(key: str, values: list, metric: str = "m", label: str | None = None, deterministic: bool = False,
        **per_seed_extra) -> dict:
    """A run with one final `metric` per seed 0, 1, ...; None marks a diverged seed.  per_seed_extra: other
    metrics, one list of values per name, aligned with `values`."""
    per_seed = []
    for s, v in enumerate(values):
        entry = {"seed": s, "diverged": v is None, metric: v}
        for name, column in per_seed_extra.items():
            entry[name] = None if v is None else column[s]
        per_seed.append(entry)
    survivors = [e for e in per_seed if not e["diverged"]]
    metrics = [metric, *per_seed_extra]
    median = {}
    for name in metrics:
        alive = sorted(e[name] for e in survivors)
        median[name] = (alive[len(alive) // 2] if len(alive) % 2 else (alive[len(alive) // 2 - 1] + alive[len(alive) // 2]) / 2) \
            if alive else math.nan
    return {
        "key": key, "label": label or key, "deterministic": deterministic,
        "seeds": [e["seed"] for e in survivors], "seeds_tried": len(values),
        "seeds_diverged": len(values) - len(survivors), "diverged_seeds": [e["seed"] for e in per_seed if e["diverged"]],
        "diverged": not survivors, "final_per_seed": per_seed, "final_median": median,
        "curves": {"iteration": [0, 10], **{name: [[1.0, e[name]] for e in survivors] for name in metrics}},
        "curves_diverged": {name: [[1.0, None] for _ in range(len(values) - len(survivors))] for name in metrics},
    }


def results(*runs, name: str = "made_up", family: str = "diag", config: dict | None = None, quick: bool = False,
            n_seeds: int = 3, **extra) -> dict:
    return {"experiment": name, "family": family, "quick": quick, "config": config or {"d": 5},
            "n_seeds": n_seeds, "runs": list(runs), "seconds": {"train": 1.5, "total": 2.0}, **extra}
