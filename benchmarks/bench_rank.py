"""Where a ReLU experiment's metrics time goes at one grid point, and whether batching grid points helps (not a test).

    .venv/bin/python benchmarks/bench_rank.py [--only relu_multi_layer ...] [--states 8] [--repeats 5]

The states are real: each experiment's runs (one seed each) are trained with the experiment's own schedules, and
the nets are copied at --states grid points spread over training.  At each state, milliseconds per grid point
(all runs of the experiment together, median of --repeats passes over the states, one BLAS thread as the
experiments run):
  evaluate        everything `relu.evaluate` computes there (losses, Jacobian rank, feature sparsity, ...)
  factor          `relu_nets.jacobian_factor`: F with F F^T = phi phi^T
  gram            the Gram matrix of F's live part, the smaller side
  eigvalsh        numpy's float64 symmetric eigenvalues of it, which the rank counts
Then `evaluate` on C grid points' states stacked as one batch of C x R rows (the layout a chunked evaluation
would use), per grid point: if batching grid points paid, these would fall well below C = 1.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from largestep.threads import limited_threads
from largestep import experiments, metrics, relu_nets
from largestep.experiments import relu
from largestep.seeds import FLOAT32_OVERFLOW, diverged, evaluation_grid

NAMES = ("relu_1d", "relu_two_layer", "relu_multi_layer")


def trained_states(config, count: int) -> list:
    """The nets of the runs (seed 0) that do not diverge, at `count` grid points spread over training, each a list
    of layers (a diverged row's metrics are not computed: `relu.evaluate` leaves it out)."""
    data = relu.make_data(config)
    grid = evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)
    picks = set(grid[np.linspace(0, len(grid) - 1, count).round().astype(int)].tolist())
    layers = relu_nets.stack([relu.make_student(config, 0) for _ in config.runs])
    steps = np.stack([r.schedule.values(config.iterations) for r in config.runs])
    states = []

    def on_stop(k):
        if k in picks:
            states.append([(w.copy(), None if b is None else b.copy()) for w, b in layers])

    with np.errstate(over="ignore", invalid="ignore"):
        relu_nets.train(layers, data.x_train, data.y_train, steps, [0] * len(config.runs), np.array(sorted(picks)),
                        on_stop)
        alive = ~np.any([diverged(relu_nets.mse(s, data.x_train, data.y_train), FLOAT32_OVERFLOW) for s in states], 0)
    return [[(w[alive], None if b is None else b[alive]) for w, b in s] for s in states]


def per_call_ms(function, arguments: list, repeats: int) -> float:
    """Median over repeats of the mean milliseconds of function(a) over the arguments."""
    for a in arguments:
        function(a)
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for a in arguments:
            function(a)
        passes.append((time.perf_counter() - start) / len(arguments) * 1e3)
    return statistics.median(passes)


def smaller_gram(phi: np.ndarray) -> np.ndarray:
    """As `metrics.rank_from_jacobian` forms it: phi phi^T or phi^T phi, whichever is smaller."""
    phi_t = np.swapaxes(phi, 1, 2)
    return phi @ phi_t if phi.shape[1] <= phi.shape[2] else phi_t @ phi


def stacked(states: list) -> list:
    return [(np.concatenate([s[l][0] for s in states]), None if states[0][l][1] is None
             else np.concatenate([s[l][1] for s in states])) for l in range(len(states[0]))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=list(NAMES), choices=NAMES)
    parser.add_argument("--states", type=int, default=8, help="grid points sampled over training (default 8)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.states < 1 or args.repeats < 1:
        parser.error("--states and --repeats must be at least 1")
    print(f"ms per grid point, all runs of the experiment at once, median of {args.repeats} passes over "
          f"{args.states} trained states (load average {' '.join(f'{x:.1f}' for x in os.getloadavg())})")
    with limited_threads():
        for name in args.only:
            config = experiments.get(name).config
            data = relu.make_data(config)
            x_rank = relu.rank_points(config, data)
            states = trained_states(config, args.states)
            rows = len(states[0][0][0])

            def evaluate(layers):
                return relu.evaluate(config, data, x_rank, layers, np.zeros(len(layers[0][0]), bool))

            factors = [relu_nets.jacobian_factor(s, x_rank) for s in states]
            live = [metrics._live_first(metrics._live_first(f, axis=2), axis=1) for f in factors]
            grams = [smaller_gram(p) for p in live]
            parts = {
                "evaluate": per_call_ms(evaluate, states, args.repeats),
                "factor": per_call_ms(lambda s: relu_nets.jacobian_factor(s, x_rank), states, args.repeats),
                "gram": per_call_ms(smaller_gram, live, args.repeats),
                "eigvalsh": per_call_ms(np.linalg.eigvalsh, grams, args.repeats),
            }
            sizes = sorted({g.shape[-1] for g in grams})
            print(f"{name} ({rows} of {len(config.runs)} runs not diverged, Gram {'/'.join(map(str, sizes))} square): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in parts.items())
                  + f"; eigvalsh {parts['eigvalsh'] / parts['evaluate']:.0%} of evaluate")
            batched = []
            for chunk in (1, 2, 4, 8):
                if chunk > len(states):
                    break
                groups = [stacked(states[i:i + chunk]) for i in range(0, len(states) - chunk + 1, chunk)]
                batched.append(f"C={chunk} {per_call_ms(evaluate, groups, args.repeats) / chunk:.2f}")
            print(f"  evaluate with C grid points per batch, per grid point: {', '.join(batched)}")


if __name__ == "__main__":
    main()
