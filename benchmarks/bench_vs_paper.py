"""Our code against the paper's code, on this machine, in one run (not a test).

    .venv/bin/python benchmarks/bench_vs_paper.py --paper-dir DIR [--only NAME ...] [--repeats 3] [--quick]

DIR is your checkout of the paper's repository (github.com/tml-epfl/sgd-sparse-features); this project ships
none of its code.  For each toy experiment the script writes, into a temporary directory, a small driver that
imports the paper's modules (diag_nets.py, fc_nets.py, utils.py) unchanged from DIR and calls its functions
with our experiment's hyperparameters: the same data (drawn here, handed over as arrays), iterations, step-size
schedules, evaluation grid and metrics, one seed per run.  Our side is `python -m largestep reproduce NAME
--seeds 1`, with our sharpness metric off (`--set sharpness_points=0`), which the paper does not compute.

The two sides take turns (paper, ours, paper, ours, ...), each in a fresh process with one BLAS thread
(OMP/OPENBLAS/MKL_NUM_THREADS=1), so that a change in the machine's load falls on both.  Two times per turn:
  whole        wall seconds of the process: start-up, data, training, metrics; ours also draws and writes its
               figures and results file (the paper's driver draws nothing)
  computation  training + metrics alone, timed inside the process (ours: the results' seconds.total, around
               the experiment's run; the paper's: around its training calls and metric evaluations)
Medians over the repeats; ratio = paper / ours.  Where the paper's code raises (e.g. an SVD that does not
converge at the edge of divergence), the rest of that run is not done and the other runs go on: its seconds
then cover less than the work asked for, so the ratio is a lower bound, printed with >=.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MATCHED = ("diag_gd", "diag_sgd", "loss_surface", "relu_1d", "relu_two_layer", "relu_multi_layer")
OPTIONAL = ("relu_1d_overreg",)  # relu_1d's computation with another warmup: adds nothing by default
# What the paper's repository has no code for, or what is not a toy experiment: said in the output, not faked.
UNMATCHED = {
    "stabilization_1d": "the paper's repository has no code for the 1-D stabilization example",
    "phase_diag, phase_relu": "the paper's repository has no code for the (eta, f) phase maps",
    "relu_two_layer_draws, relu_multi_layer_draws": "our own study over data draws; no counterpart in the paper",
    "deep_mnist1d": "deep nets (deep_nets/train.py), not a toy experiment: minutes per run, not benchmarked here",
}
# The paper's modules the driver imports, and a definition each must hold: a directory without them is not a
# checkout of the paper's repository, and the driver would fail in every turn.
PAPER_FILES = {"diag_nets.py": "def SGD(", "fc_nets.py": "def train_fc_net(", "utils.py": "def effective_rank("}
# The seed each of the paper's notebooks sets before training a run: its code as its authors ran it (a state our
# seed reaches and its seed does not could make it raise, which would say nothing about speed).
PAPER_SEEDS = {"diag_gd": 1, "diag_sgd": 1, "loss_surface": 2, "relu_1d": 3, "relu_1d_overreg": 3,
               "relu_two_layer": 0, "relu_multi_layer": 5}
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LARGESTEP_THREADS": "1",
              "NUMBA_NUM_THREADS": "1"}


class Usage(Exception):
    """A bad argument: one line, exit status 2."""


def check_paper_dir(path: Path | None) -> Path:
    if path is None:
        raise Usage("--paper-dir DIR is required: DIR is your checkout of github.com/tml-epfl/sgd-sparse-features")
    if not path.is_dir():
        raise Usage(f"--paper-dir {path}: no such directory")
    for name, definition in PAPER_FILES.items():
        file = path / name
        if not file.is_file() or definition not in file.read_text(errors="replace"):
            raise Usage(f"--paper-dir {path}: not a checkout of tml-epfl/sgd-sparse-features "
                        f"({name} {'lacks ' + definition.rstrip('(') if file.is_file() else 'missing'})")
    return path.resolve()


# ---------------------------------------------------------------- the paper's side

# Runs in a fresh process: argv = DIR, the hyperparameters (JSON), the arrays (.npz).  Prints one JSON line.
DRIVER = r"""
import json, os, sys, time, traceback
paper_dir, spec = sys.argv[1], json.load(open(sys.argv[2]))
paper_dir = os.path.abspath(paper_dir)
sys.path.insert(0, paper_dir)
import numpy as np
arrays = dict(np.load(sys.argv[3]))
crashes, computation = [], 0.0


def schedule(run, T):
    # the paper's trainers take decay iterations and factors; [-1] / [0] with factor 1 is "no decay", as in
    # its notebooks
    thresholds = [int(f * T) for f, _ in run["decays"]] or [-1]
    return thresholds, [k for _, k in run["decays"]] or [1.0]


def timed_run(key, work):
    global computation
    start = time.perf_counter()
    try:
        work()
    except Exception as err:
        # where in the paper's code: its last frame in DIR
        frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(paper_dir)]
        where = f"{os.path.basename(frames[-1].filename)[:-3]}.{frames[-1].name}: " if frames else ""
        message = str(err).splitlines()[0] if str(err) else ""
        crashes.append({"run": key, "error": f"{where}{type(err).__name__}: {message}"})
    computation += time.perf_counter() - start


if spec["family"] in ("diag", "loss_surface"):
    from diag_nets import GD, SGD, compute_grad_matrix_ranks, loss
    X, y, Xt, yt = arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
    d = X.shape[1]
    u0, v0 = spec["init_scale"] * np.ones(d), np.zeros(d)
    ends = {}

    def diag_run(run, grid, key):
        def work():
            np.random.seed(run["seed"])
            thresholds, decays = schedule(run, spec["iterations"])
            trainer = SGD if run["algorithm"] == "sgd" else GD
            _, _, u, v, us, vs = trainer(X, y, Xt, yt, run["lr"], u0, v0, grid, spec["iterations"],
                                         thresholds=thresholds, decays=decays, return_all_params=True)
            ends[key] = (u, v, us, vs)
            if spec["family"] == "diag":
                [(np.abs(a * b) > spec["l0_threshold"]).sum() for a, b in zip(us, vs)]
                compute_grad_matrix_ranks(us, vs, Xt[:2 * d], spec["rank_tol"])
        timed_run(key, work)

    if spec["family"] == "diag":
        for run in spec["runs"]:
            diag_run(run, arrays["grid"], run["key"])
    else:
        from utils import project
        w_half = np.sqrt(arrays["beta_star"])

        def plane(u_flow, v_flow):
            e1u, e1v = w_half - u0, w_half - v0
            norm = np.sqrt(np.sum(e1u ** 2) + np.sum(e1v ** 2))
            e1u, e1v = e1u / norm, e1v / norm
            c = (u_flow - u0) @ e1u + (v_flow - v0) @ e1v
            e2u, e2v = (u_flow - u0) - c * e1u, (v_flow - v0) - c * e1v
            norm = np.sqrt(np.sum(e2u ** 2) + np.sum(e2v ** 2))
            return e1u, e1v, e2u / norm, e2v / norm

        def surface(e, a_values, b_values, sets):
            for a in a_values:
                for b in b_values:
                    u, v = u0 + a * e[0] + b * e[2], v0 + a * e[1] + b * e[3]
                    for x_, y_ in sets:
                        loss(x_, x_ @ (u * v), y_)

        for group, grid, surface_b, sets in (("runs", arrays["grid"], arrays["coefs"], ((X, y), (Xt, yt))),
                                             ("animation_runs", arrays["frames"], arrays["anim_b"], ((X, y),))):
            for run in spec[group]:
                diag_run(run, grid, group + "." + run["key"])
            def place(group=group, surface_b=surface_b, sets=sets):
                first = group + "." + spec[group][0]["key"]
                if first not in ends:
                    return
                e = plane(*ends[first][:2])
                for key, (_, _, us, vs) in ends.items():
                    if key.startswith(group + "."):
                        [project(a, b, u0, v0, *e) for a, b in zip(us, vs)]
                surface(e, arrays["coefs"], surface_b, sets)
            timed_run(group + " plane", place)
else:
    import torch
    from fc_nets import FCNet, FCNet2Layers, compute_grad_matrix_ranks, train_fc_net
    from utils import effective_rank
    tensor = lambda a: torch.tensor(a, dtype=torch.float32)
    X, Xt, x_rank = tensor(arrays["x_train"]), tensor(arrays["x_test"]), tensor(arrays["x_rank"])
    y, yt = tensor(arrays["y_train"]).reshape(-1, 1), tensor(arrays["y_test"]).reshape(-1, 1)
    widths, T = spec["widths"], spec["iterations"]
    for run in spec["runs"]:
        def work(run=run):
            np.random.seed(run["seed"])
            torch.manual_seed(run["seed"])
            if len(widths) == 1:
                net = FCNet2Layers(n_feature=X.shape[1], n_hidden=widths[0], biases=[spec["biases"], False])
                if spec["init"] == "1d":
                    net.init_blanc_et_al(init_scales=[1.0, 1.0])
                else:
                    net.init_gaussian(init_scales=[spec["init_scale"], spec["output_init_scale"]])
            else:
                net = FCNet(n_feature=X.shape[1], n_hidden=list(widths), biases=True)
                net.init_gaussian(init_scales=[spec["init_scale"]] * (len(widths) + 1))
            thresholds, decays = schedule(run, T)
            _, _, nets = train_fc_net(X, y, Xt, yt, run["lr"], 1, net, arrays["grid"], T, thresholds=thresholds,
                                      decays=decays, iters_percentage_linear_warmup=run["warmup_until"],
                                      gamma_warmup_factor_max=run["warmup_max"],
                                      warmup_exponent=run["warmup_exponent"])
            for net in nets:
                if len(widths) == 1:
                    net.feature_sparsity(X, corr_threshold=spec["corr_threshold"])
                else:
                    for layer in range(1, len(widths) + 1):
                        net.feature_sparsity(X, n_hidden_to_take=layer, corr_threshold=spec["corr_threshold"])
                    effective_rank(np.linalg.svd(net.features(x_rank))[1])
            compute_grad_matrix_ranks(nets, x_rank, spec["rank_tol"])
        timed_run(run["key"], work)
print(json.dumps({"computation": computation, "crashes": crashes}))
"""


def _decays(schedule) -> list:
    return [list(d) for d in schedule.decays]


def paper_inputs(name: str, quick: bool) -> tuple[dict, dict]:
    """(spec, arrays) for the driver: our experiment's config, as the paper's functions take it, and our data."""
    import numpy as np

    from largestep import experiments
    from largestep.data import sparse_regression
    from largestep.seeds import evaluation_grid

    experiment = experiments.get(name)
    config = experiment.config.quick() if quick else experiment.config
    seed = PAPER_SEEDS[name]
    if experiment.family in ("diag", "valley"):
        data = sparse_regression(config.n, config.d, config.r, config.n_test, config.data_seed)
        arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test,
                  "grid": evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)}
        spec = {"family": "diag" if experiment.family == "diag" else "loss_surface",
                "iterations": config.iterations, "init_scale": config.init_scale}
        groups = ("runs",) if experiment.family == "diag" else ("runs", "animation_runs")
        for group in groups:
            spec[group] = [{"key": r.key, "algorithm": r.algorithm, "lr": r.schedule.lr,
                            "decays": _decays(r.schedule), "seed": seed} for r in getattr(config, group)]
        if experiment.family == "diag":
            spec.update(l0_threshold=config.l0_threshold, rank_tol=config.rank_tol)
        else:
            arrays.update(beta_star=data.extras["beta_star"],
                          coefs=np.linspace(config.coef_min, config.coef_max, config.grid_points),
                          anim_b=np.linspace(*config.animation_b_range, config.grid_points),
                          frames=evaluation_grid(config.iterations, config.animation_frames_early,
                                                 config.animation_frames_spaced))
        return spec, arrays
    from largestep.experiments import relu

    data = relu.make_data(config)
    arrays = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test,
              "x_rank": relu.rank_points(config, data),
              "grid": evaluation_grid(config.iterations, config.grid_early, config.grid_spaced)}
    runs = []
    for r in config.runs:
        w = r.schedule.warmup
        # the paper's warmup multiplies the step by 1 + (max - 1) * (t/T)**exponent until the given fraction
        if w is None:
            until, top, exponent = 0.0, 1.0, 1.0
        elif w.kind == "linear" and w.scale == 1:
            until, top, exponent = w.until, w.gain, 1.0
        elif w.kind == "power" and w.scale == 1:
            until, top, exponent = w.until, 1.0 + w.gain, w.power
        else:
            raise ValueError(f"{name}: the paper's trainer has no {w.kind} warmup with scale {w.scale}")
        runs.append({"key": r.key, "lr": r.schedule.lr, "decays": _decays(r.schedule) or [[0.0, 1.0]],
                     "warmup_until": until, "warmup_max": top, "warmup_exponent": exponent, "seed": seed})
    spec = {"family": "relu", "iterations": config.iterations, "widths": list(config.widths),
            "biases": config.biases, "init": config.init, "init_scale": config.init_scale,
            "output_init_scale": config.init_scale if config.output_init_scale is None else config.output_init_scale,
            "corr_threshold": config.corr_threshold, "rank_tol": config.rank_tol, "runs": runs}
    return spec, arrays


def paper_turn(paper_dir: Path, work: Path) -> dict:
    """One process of the paper's code: wall and computation seconds, and the runs that raised."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, str(work / "driver.py"), str(paper_dir), str(work / "spec.json"),
                           str(work / "arrays.npz")], capture_output=True, text=True, cwd=work,
                          env={**os.environ, **THREAD_ENV})
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"the paper's driver failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall": wall, "computation": out["computation"], "crashes": out["crashes"]}


def our_turn(name: str, quick: bool, with_sharpness: bool) -> dict:
    """One `reproduce NAME --seeds 1` process: wall seconds, and its own seconds around the experiment's run."""
    extra = (["--set", "sharpness_points=0"] if with_sharpness else []) + (["--quick"] if quick else [])
    env = {**os.environ, **THREAD_ENV, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "largestep", "reproduce", name, "--seeds", "1", "--out", out,
                               "--no-progress", *extra], capture_output=True, text=True, env=env, cwd=out)
        wall = time.perf_counter() - start
        results = Path(out) / f"{name}.json"
        # exit status 1: a robust claim failed, which one seed may do; the work was done and written
        if done.returncode not in (0, 1) or not results.is_file():
            raise RuntimeError(f"reproduce {name} failed:\n{done.stderr[-2000:]}")
        return {"wall": wall, "computation": json.loads(results.read_text())["seconds"]["total"]}


# ---------------------------------------------------------------- the table


def ratio_text(paper: float, ours: float, lower_bound: bool) -> str:
    return f"{'>=' if lower_bound else ''}{paper / ours:.1f}x"


def table(rows: list[dict]) -> list[str]:
    """Rows: name, paper and ours (lists of {"wall", "computation"} per turn), crashes (the paper's, any
    turn).  Medians; a ratio is a lower bound where the paper's code raised."""
    head = (f"{'experiment':18s}{'paper whole':>12s}{'ours whole':>11s}{'ratio':>9s}"
            f"{'paper comp':>12s}{'ours comp':>11s}{'ratio':>9s}  repeats")
    lines = [head]
    notes = []
    for row in rows:
        cells = [row["name"].ljust(18)]
        bound = bool(row.get("crashes"))
        for what, width in (("wall", 12), ("computation", 12)):
            paper = statistics.median(t[what] for t in row["paper"])
            ours = statistics.median(t[what] for t in row["ours"])
            cells.append(f"{paper:{width - 2}.2f} s{ours:9.2f} s{ratio_text(paper, ours, bound):>9s}")
        cells.append(f"  {len(row['paper'])}")
        lines.append("".join(cells))
        for crash in dict.fromkeys(f"run {c['run']}: {c['error']}" for c in row.get("crashes", [])):
            notes.append(f"  {row['name']}: the paper's code raised in {crash}; the rest of that run was not done, "
                         "so its seconds cover less work: >= is a lower bound")
    return lines + notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--paper-dir", type=Path, help="your checkout of github.com/tml-epfl/sgd-sparse-features")
    parser.add_argument("--only", nargs="+", default=list(MATCHED), choices=MATCHED + OPTIONAL, metavar="NAME",
                        help=f"experiments (default: {' '.join(MATCHED)}; also {' '.join(OPTIONAL)})")
    parser.add_argument("--repeats", type=int, default=3, help="turns per side per experiment (median)")
    parser.add_argument("--quick", action="store_true", help="both sides at our --quick size (a check, not a timing)")
    args = parser.parse_args(argv)
    try:
        paper_dir = check_paper_dir(args.paper_dir)
        if args.repeats < 1:
            raise Usage(f"--repeats must be >= 1, got {args.repeats}")
    except Usage as err:
        print(f"bench_vs_paper.py: {err}", file=sys.stderr)
        return 2

    from largestep import experiments

    print(f"paper: {paper_dir.name} (DIR); ours: {ROOT.name}; one seed per run; one BLAS thread; alternating "
          f"turns paper, ours; medians of {args.repeats}{'; --quick sizes' if args.quick else ''}")
    print("load average {:.2f} {:.2f} {:.2f} at the start, {} cores".format(*os.getloadavg(), os.cpu_count()))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.only:
            import numpy as np

            work = Path(scratch) / name
            work.mkdir()
            spec, arrays = paper_inputs(name, args.quick)
            (work / "driver.py").write_text(DRIVER)
            (work / "spec.json").write_text(json.dumps(spec))
            np.savez(work / "arrays.npz", **arrays)
            config = experiments.get(name).config
            with_sharpness = getattr(config, "sharpness_points", 0) > 0
            row = {"name": name, "paper": [], "ours": [], "crashes": []}
            for _ in range(args.repeats):
                paper = paper_turn(paper_dir, work)
                row["paper"].append(paper)
                row["crashes"] += paper["crashes"]
                row["ours"].append(our_turn(name, args.quick, with_sharpness))
            rows.append(row)
            print(f"  {name} done", file=sys.stderr, flush=True)
    print("\n".join(table(rows)))
    print("load average {:.2f} {:.2f} {:.2f} at the end".format(*os.getloadavg()))
    print("  whole: wall seconds of the process (ours also draws its figures; the paper's driver draws nothing); "
          "comp: training + metrics alone; ratio = paper / ours")
    if any(getattr(experiments.get(r["name"]).config, "sharpness_points", 0) for r in rows):
        print("  our sharpness metric (not in the paper) off: --set sharpness_points=0")
    print("  not matched: " + "; ".join(f"{k} ({v})" for k, v in UNMATCHED.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
