"""How stable each claim is against "another machine", by number of seeds (a measurement, not a test).

    .venv/bin/python benchmarks/claim_stability.py [--experiment diag_sgd] [--seeds 5 8 12]

Another CPU rounds some sums differently; at the edge of divergence that decides which seeds survive.
Here each configuration is run with its initialization exact and moved in the last bits (one unit in the
last place up and down, and a factor 1 + 1e-15), standing in for other machines.  For each seed count it
prints, per run, which claims hold (P/F, in the order of the experiment's claims), the divergence counts
and the seconds; then, per claim, in how many of the perturbed variants it held.
"""
from __future__ import annotations

import largestep  # noqa: F401  (first: it pins numpy's OpenBLAS to one thread before numpy loads)

import argparse
import dataclasses
import time

import numpy as np

from largestep.claims import evaluate
from largestep.experiments import claims_for, get, run_experiment

FIELDS = {"stabilization_1d": "theta0"}  # the initialization field; init_scale elsewhere


def variants(value: float) -> dict[str, float]:
    return {"exact": value, "+1 ulp": float(np.nextafter(value, np.inf)),
            "-1 ulp": float(np.nextafter(value, -np.inf)), "x(1+1e-15)": value * (1 + 1e-15)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="diag_sgd")
    parser.add_argument("--seeds", type=int, nargs="+", default=[5, 8, 12])
    args = parser.parse_args()
    exp = get(args.experiment)
    field = FIELDS.get(args.experiment, "init_scale")
    for n_seeds in args.seeds:
        held: dict[str, list[bool]] = {}
        for tag, value in variants(getattr(exp.config, field)).items():
            config = dataclasses.replace(exp.config, **{field: value})
            start = time.perf_counter()
            results = run_experiment(exp, config, n_seeds=n_seeds, progress=False)
            seconds = time.perf_counter() - start
            verdicts = evaluate(results, claims_for(results))
            for v in verdicts:
                held.setdefault(("robust: " if v.claim.robust else "ordering: ") + v.text, []).append(v.holds)
            diverged = " ".join(f"{r['seeds_diverged']}/{r['seeds_tried']}" for r in results["runs"])
            print(f"{n_seeds:3d} seeds, {tag:10s} {''.join('P' if v.holds else 'F' for v in verdicts)}  "
                  f"diverged {diverged}  {seconds:.0f} s", flush=True)
        for claim, outcomes in held.items():
            print(f"    {sum(outcomes)} of {len(outcomes)}  {claim}")


if __name__ == "__main__":
    main()
