"""Speed of the valley experiments: batched surface vs one call per grid point, animation frames drawn
on a saved background vs full redraws, and the split of a full-scale `reproduce loss_surface
stabilization_1d` (training, surfaces, figures, animation).

    .venv/bin/python benchmarks/bench_valley.py [--repeats 5]

Reports medians over repeats and ratios; the machine may be shared, so absolute times are noisy.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np



def median_seconds(fn, repeats: int, clock=time.perf_counter) -> float:
    fn()  # warm-up: first calls pay for imports, BLAS start-up and page faults
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def bench_surface(repeats: int) -> None:
    from largestep import diag_nets, landscape
    from largestep.data import sparse_regression

    data = sparse_regression(20, 30, 3)
    rng = np.random.default_rng(0)
    plane = landscape.plane_through(rng.normal(size=60), rng.normal(size=60), rng.normal(size=60))
    coefs = np.linspace(-0.5, 2.3, 100)

    def pointwise():
        out = np.empty((100, 100))
        for j, b in enumerate(coefs):
            for i, a in enumerate(coefs):
                w = landscape.points(plane, [a, b])
                out[j, i] = diag_nets.loss(data.x_test, data.y_test, (w[:30] * w[30:])[None])[0]
        return out

    batched = median_seconds(lambda: landscape.surface(plane, coefs, coefs, data.x_test, data.y_test), repeats)
    loop = median_seconds(pointwise, max(1, repeats // 2))
    print(f"surface 100x100 on 1000 test points: batched {batched * 1e3:.0f} ms, one call per point "
          f"{loop * 1e3:.0f} ms, ratio {loop / batched:.0f}x")


def bench_animation_frames(repeats: int) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from largestep import landscape

    a, b = np.linspace(-0.5, 2.3, 100), np.linspace(-0.3, 1.15, 100)
    values = np.exp(-3 * np.add.outer(b - 0.5, a - 1.0) ** 2) * 10 + 1e-6
    path = np.cumsum(np.random.default_rng(0).normal(scale=0.02, size=(60, 2)), axis=0)

    def full_redraw():  # what a naive loop does: redraw the contours every frame
        fig = Figure(figsize=(4.8, 3.8), dpi=100)
        canvas = FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        landscape.draw_surface(ax, a, b, values, equal_aspect=False)
        line, = ax.plot([], [])
        for k in range(len(path)):
            line.set_data(path[: k + 1, 0], path[: k + 1, 1])
            canvas.draw()
            np.asarray(canvas.buffer_rgba())

    with tempfile.TemporaryDirectory() as tmp:
        blit = median_seconds(lambda: landscape.animate(Path(tmp) / "a.gif", a, b, values, {"x": (path, "green")},
                                                        {}, np.arange(len(path))), repeats)
    redraw = median_seconds(full_redraw, max(1, repeats // 2))
    print(f"animation, 60 frames: background drawn once {blit:.2f} s (incl. GIF encoding), "
          f"full redraw per frame {redraw:.2f} s (frames only), ratio {redraw / blit:.1f}x")


def bench_reproduce(repeats: int) -> None:
    import matplotlib.pyplot as plt

    from largestep import experiments

    for name in ("loss_surface", "stabilization_1d"):
        exp = experiments.get(name)
        splits = {"run": [], "figures": [], "extras": []}
        for _ in range(repeats):
            start = time.perf_counter()
            results = {"experiment": name, **exp.run(exp.config, n_seeds=5)}
            splits["run"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as tmp:
                for stem, fig in exp.figures(results).items():
                    fig.savefig(Path(tmp) / f"{stem}.png")
                    fig.savefig(Path(tmp) / f"{stem}.pdf")
                    plt.close(fig)
                splits["figures"].append(time.perf_counter() - start)
                start = time.perf_counter()
                if exp.extras is not None:
                    exp.extras(results, tmp)
                splits["extras"].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in splits.items()}
        total = sum(med.values())
        parts = ", ".join(f"{k} {v:.2f} s ({v / total:.0%})" for k, v in med.items())
        print(f"{name} full scale, 5 seeds: {total:.2f} s = {parts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bench_surface(args.repeats)
    bench_animation_frames(args.repeats)
    bench_reproduce(max(1, args.repeats // 2))


if __name__ == "__main__":
    main()
