"""The valley's figures and animation (`stabilization_1d`, `loss_surface`), drawn from a results dict alone."""
from __future__ import annotations

import numpy as np

from .. import landscape
from ..plotting import as_array, figure_style, panel_layout, panels, run_colors, titled
from ..sweep import divergence_note


def stabilization_figures(results: dict) -> dict:
    import matplotlib.pyplot as plt

    cfg = results["config"]
    runs = results["runs"]
    colors = run_colors(len(runs))
    threshold = results["stability_threshold"]
    low, high = results["bouncing_interval"]
    with figure_style():
        fig, (ax_loss, ax_theta, ax_eta) = plt.subplots(1, 3, figsize=(13.5, 3.9), layout=panel_layout())
        for run, color in zip(runs, colors):
            label = f"η={run['lr']:g}: {run['label']} ({divergence_note(run)})"
            curves = run["curves"] if not run["diverged"] else run["curves_diverged"]
            iteration = np.asarray(run["curves"]["iteration"], float)
            loss, theta = as_array(curves["loss"]), as_array(curves["theta"])
            if loss.size == 0:
                continue
            # one seed, not a mean: the iterate alternates sides of theta* and a mean would hide it
            # the run inside the interval on top: its band is the point of the panel, not hidden under another run
            ax_loss.plot(iteration + 1, loss[0], color=color, lw=0.8, label=label,
                         zorder=3 if low < run["lr"] < high else 2)
            early = iteration <= 40
            ax_theta.plot(iteration[early], theta[0][early], ".-", color=color, lw=0.8, ms=3)
            if run["diverged"]:
                ax_eta.plot(run["lr"], 1.0, "x", color=color, ms=8, mew=2)
                ax_eta.annotate(f"diverged\n(all by iteration {max(run['diverged_at'])})", (run["lr"], 1.0), xytext=(-6, -24),
                                textcoords="offset points", fontsize=8, color=color, ha="right")
            else:
                per_seed = [s for s in run["final_per_seed"] if not s["diverged"]]
                lo = min(s["loss_min_last_half"] for s in per_seed)
                hi = max(s["loss_max_last_half"] for s in per_seed)
                if hi <= 0:  # converged exactly: theta* is a fixed point that float64 reaches
                    ax_eta.annotate("loss = 0", (run["lr"], 1e-19), fontsize=8, color=color, ha="center")
                    ax_eta.plot(run["lr"], 1e-20, "v", color=color, ms=8, clip_on=False)
                    continue
                ax_eta.plot([run["lr"]] * 2, [max(lo, 1e-20), hi], "-", color=color, lw=4,
                            solid_capstyle="butt")
        ax_loss.set(xscale="log", yscale="log", xlabel="iteration + 1", title="loss (one seed)")
        ax_loss.set_ylim(1e-20, 1e3)
        ax_theta.axhline(cfg["theta_star"], color="black", ls="--", lw=1)
        ax_theta.set(xlabel="iteration", ylabel="θ", title="θ over the first 40 iterations (θ* dashed)")
        ax_theta.set_ylim(-0.1, 2.0)
        ax_eta.axvspan(low, high, color="tab:orange", alpha=0.25, lw=0,
                       label=f"interval ({low:.3g}, {high:.3g})")
        ax_eta.axvline(threshold, color="black", ls="--", lw=1, label=f"(θ* x_max)⁻² = {threshold:.3g}")
        ax_eta.set(yscale="log", xlabel="step size η",
                   title="loss range over the second half\n(min–max over iterations and seeds)")
        ax_eta.set_ylim(1e-20, 10)
        ax_eta.legend(loc="center right", fontsize=7)
        handles, labels = ax_loss.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False)
        fig.suptitle(titled(results, f"Loss stabilization in one dimension: h(x) = xθ², "
                                     f"x ~ U[{cfg['x_min']:g}, {cfg['x_max']:g}], θ₀ = {cfg['theta0']:g}, "
                                     f"{cfg['iterations']:,} iterations"), fontsize=11)
    return {"stabilization_1d": fig}


_TRAJECTORY_COLORS = {"gd_flow": "black", "gd": "0.35", "sgd": "#00b000"}


def _trajectory_color(index: int, run: dict) -> str:
    return _TRAJECTORY_COLORS["gd_flow" if index == 0 else run["algorithm"]]


def loss_surface_figures(results: dict) -> dict:
    import matplotlib.pyplot as plt

    surface = results["surface"]
    a, b = np.asarray(surface["a"]), np.asarray(surface["b"])
    cfg = results["config"]
    net = f"Diagonal net n={cfg['n']}, d={cfg['d']}, r={cfg['r']}"
    with figure_style(**{"axes.grid": False}):
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.8), layout=panel_layout())
        for ax, metric, title in zip(axes, ("train_loss", "test_loss"), ("train loss", "test loss")):
            landscape.draw_surface(ax, a, b, as_array(surface[metric]))
            for i, run in enumerate(results["runs"]):
                if not run["seeds"]:
                    continue
                seed = "" if run["deterministic"] else f" (seed {run['seeds'][0]}; {divergence_note(run)})"
                ax.plot(as_array(run["curves"]["plane_a"])[0], as_array(run["curves"]["plane_b"])[0], ".-",
                        color=_trajectory_color(i, run), lw=0.8, ms=2, label=run["label"] + seed)
            landscape.draw_landmarks(ax, surface["landmarks"])
            clipped = f" (clipped at {surface['clip']:g})" if np.nanmax(as_array(surface[metric])) >= surface["clip"] else ""
            third, along = (("w_flow", "w_flow − w_init (orthogonal part)") if "w_flow" in surface["landmarks"] else
                            ("−∇L(w_init)", "−∇L(w_init), orthogonal part (GF diverged: no w_flow)"))
            ax.set(title=f"{title} on the plane through w_init, w*, {third}{clipped}",
                   xlabel="along w* − w_init", ylabel=f"along {along}")
            ax.title.set_fontsize(9)
        axes[0].legend(loc="upper right", fontsize=7, framealpha=0.85)
        fig.suptitle(titled(results, f"{net}: GD with large steps bounces in place, "
                                     "gradient flow stops at w_flow, SGD drifts to w*"), fontsize=10)
    curves = panels(results, [
        {"metric": "train_loss", "log": True, "title": "train loss"},
        {"metric": "test_loss", "log": True, "title": "test loss"},
        {"metric": "distance_to_w_star", "log": True, "title": "distance to w*"},
    ], suptitle=f"{net}: loss and distance to w* (up to sign flips)")
    return {"loss_surface": fig, "loss_surface_curves": curves}


def loss_surface_extras(results: dict, out_dir, every: int = 1, **animate_options) -> list:
    """The animation: gradient flow against SGD with large steps over the train-loss surface.

    every > 1 keeps every n-th frame (and the last) at fps / n, same duration: a lighter GIF, e.g. for a
    notebook; animate_options go to landscape.animate (e.g. dpi=72).
    """
    from pathlib import Path

    anim = results["animation"]
    keep = np.unique(np.r_[np.arange(0, len(anim["iteration"]), every), len(anim["iteration"]) - 1])
    colors = ["black", "#00b000"]
    trajectories = {t["label"]: (np.asarray(t["coords"], float)[keep], c)
                    for t, c in zip(anim["trajectories"], colors) if len(t["coords"])}
    written = landscape.animate(
        Path(out_dir) / "loss_surface_animation.gif", np.asarray(anim["a"]), np.asarray(anim["b"]),
        as_array(anim["train_loss"]), trajectories, anim["landmarks"], np.asarray(anim["iteration"])[keep],
        fps=max(1, round(anim["fps"] / every)), title="QUICK RUN: training loss over a 2-D subspace" if results.get("quick")
        else "Training loss over a 2-D subspace", **animate_options)
    note = landscape.mp4_note()
    if note:
        print(f"  {note}")
    return written
