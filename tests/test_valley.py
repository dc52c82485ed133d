"""The 2-D plane, the batched surface, the 1-D stabilization model, the animation, and the two experiments."""
import json
import os
import subprocess

import numpy as np
import pytest

from largestep import diag_nets, landscape, stabilization
from largestep.__main__ import main
from largestep.data import sparse_regression
from largestep.experiments.valley import sign_symmetric_distance
from largestep.schedules import Schedule


FAKE_FFMPEG = """#!{python}
# Stands in for ffmpeg: records its arguments and pid, then copies the raw frames it is sent to the output file
# (FAKE_FFMPEG_MODE=fail: reads one frame's worth, says why on stderr and exits 1, as ffmpeg does on an error).
import os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_FFMPEG_LOG"], "w") as log:
    log.write(repr(args) + "\\n" + str(os.getpid()))
width, height = map(int, args[args.index("-s") + 1].split("x"))
if os.environ.get("FAKE_FFMPEG_MODE") == "fail":
    sys.stdin.buffer.read(width * height * 4)
    sys.exit("fake ffmpeg: cannot encode")
with open(args[-1], "wb") as out:
    out.write(sys.stdin.buffer.read())
"""


@pytest.fixture
def fake_ffmpeg(tmp_path, monkeypatch):
    """An `ffmpeg` first on PATH that copies what it is sent; returns the file where it logs (args, pid)."""
    import sys

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "ffmpeg"
    script.write_text(FAKE_FFMPEG.format(python=sys.executable))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    log = tmp_path / "ffmpeg.log"
    monkeypatch.setenv("FAKE_FFMPEG_LOG", str(log))
    return log


def _small_animation(out_dir, frames=9, **options):
    a, b = np.linspace(-0.5, 2.3, 20), np.linspace(-0.3, 1.15, 15)
    values = np.exp(-np.add.outer(b, a) ** 2) + 1e-3
    t = np.linspace(0, 1, frames)
    return landscape.animate(out_dir / "anim.gif", a, b, values, {"flow": (np.stack([t, t / 2], 1), "black")},
                             {"w_init": (0, 0)}, np.arange(frames), fps=10, size=(3.2, 2.6), dpi=80, **options)


@pytest.fixture
def plane_points():
    rng = np.random.default_rng(0)
    w_init, w_star, w_flow = rng.normal(size=(3, 12))
    return w_init, w_star, w_flow


def test_plane_basis_is_orthonormal_and_landmarks_land_where_they_should(plane_points):
    w_init, w_star, w_flow = plane_points
    plane = landscape.plane_through(w_init, w_star, w_flow)
    np.testing.assert_allclose(plane.basis @ plane.basis.T, np.eye(2), atol=1e-12)
    np.testing.assert_allclose(landscape.project(plane, w_init), [0, 0], atol=1e-12)
    # w* lies on the first axis at its distance from w_init
    np.testing.assert_allclose(landscape.project(plane, w_star), [np.linalg.norm(w_star - w_init), 0], atol=1e-12)
    # w_flow lies in the plane (upper half): its projection recovers it, and keeps its distance to w_init
    a, b = landscape.project(plane, w_flow)
    assert b > 0
    np.testing.assert_allclose(np.hypot(a, b), np.linalg.norm(w_flow - w_init), rtol=1e-12)
    np.testing.assert_allclose(landscape.points(plane, [a, b]), w_flow, atol=1e-12)
    # a point off the plane: the residual of its projection is orthogonal to both directions
    w = np.random.default_rng(1).normal(size=12)
    residual = w - landscape.points(plane, landscape.project(plane, w))
    np.testing.assert_allclose(plane.basis @ residual, [0, 0], atol=1e-12)


def test_plane_refuses_a_flow_endpoint_on_the_line_to_w_star(plane_points):
    w_init, w_star, _ = plane_points
    with pytest.raises(ValueError):
        landscape.plane_through(w_init, w_star, w_init + 0.3 * (w_star - w_init))


def test_batched_surface_equals_pointwise_loss_on_random_grid_points():
    data = sparse_regression(20, 30, 3)
    rng = np.random.default_rng(2)
    w_init = np.concatenate([np.full(30, 0.1), np.zeros(30)])
    s = np.sqrt(data.extras["beta_star"])
    plane = landscape.plane_through(w_init, np.concatenate([s, s]), rng.normal(size=60))
    alphas, betas = np.sort(rng.uniform(-1, 3, 17)), np.sort(rng.uniform(-1, 3, 13))
    values = landscape.surface(plane, alphas, betas, data.x_test, data.y_test, clip=np.inf)
    assert values.shape == (13, 17)
    for j, i in zip(rng.integers(0, 13, 25), rng.integers(0, 17, 25)):
        w = w_init + alphas[i] * plane.basis[0] + betas[j] * plane.basis[1]
        beta = (w[:30] * w[30:])[None]
        np.testing.assert_allclose(values[j, i], diag_nets.loss(data.x_test, data.y_test, beta)[0], rtol=1e-12)
    # at w* (a = ||w* - w_init||, b = 0) the loss vanishes: no cancellation error from the expansion
    at_star = landscape.surface(plane, [np.linalg.norm(np.concatenate([s, s]) - w_init)], [0.0],
                                data.x_test, data.y_test)
    assert at_star[0, 0] < 1e-28
    clipped = landscape.surface(plane, alphas, betas, data.x_test, data.y_test, clip=1.0)
    np.testing.assert_array_equal(clipped, np.minimum(values, 1.0))


def test_1d_model_batched_matches_a_plain_loop():
    iterations, etas, seeds = 500, [0.8, 1.02, 1.3], [3, 4, 5]
    out = stabilization.run_sgd(etas, seeds, iterations, np.arange(iterations + 1))
    for row, (eta, seed) in enumerate(zip(etas, seeds)):
        x = stabilization.sample_inputs(seed, iterations, 1.0, 1.1)
        theta, path = 0.5, [0.5]
        for k in range(iterations):
            # same operations in the same order: the bouncing regime amplifies any rounding difference
            theta = theta + eta * theta * (x[k] * x[k]) * (1.0 - theta * theta)
            path.append(theta)
        np.testing.assert_allclose(out["theta"][row], path, rtol=1e-12)
        losses = stabilization.population_loss(np.array(path[iterations // 2:]), 1.0, 1.0, 1.1)
        np.testing.assert_allclose(out["loss_min_last_half"][row], losses.min(), rtol=1e-12)
        np.testing.assert_allclose(out["loss_max_last_half"][row], losses.max(), rtol=1e-12)


def test_1d_model_inside_interval_neither_converges_nor_diverges_and_below_converges():
    low, high = stabilization.bouncing_interval(1.0, 1.0, 1.1)
    threshold = stabilization.stability_threshold(1.0, 1.1)
    inside, below, above = 1.02, 0.8, 2.0
    assert low < inside < high and below < threshold < low
    iterations = 100_000
    out = stabilization.run_sgd([inside, below, above], [0, 0, 0], iterations, np.array([0, iterations]))
    assert not out["diverged"][0]
    assert 1e-4 < out["loss_min_last_half"][0] and out["loss_max_last_half"][0] < 0.2
    theta = out["theta"][0, -1]
    assert abs(theta - 1.0) > 1e-3  # still off theta* after 10^5 steps
    assert out["loss_max_last_half"][1] < 1e-20 and not out["diverged"][1]
    assert out["diverged"][2] and 0 < out["diverged_at"][2] < 100
    assert np.isnan(out["loss_min_last_half"][2])


def test_sign_symmetric_distance_ignores_pair_flips_only():
    rng = np.random.default_rng(3)
    s = np.abs(rng.normal(size=6))
    u, v = s + 0.1 * rng.normal(size=6), s + 0.1 * rng.normal(size=6)
    plain = np.sqrt(((u - s) ** 2 + (v - s) ** 2).sum())
    flip = np.array([1, -1, 1, -1, -1, 1.0])
    got = sign_symmetric_distance(np.stack([u, u * flip]), np.stack([v, v * flip]), s)
    np.testing.assert_allclose(got, [plain, plain], rtol=1e-12)
    # flipping u alone changes beta: it is not a symmetry and must cost distance
    assert sign_symmetric_distance((u * flip)[None], v[None], s)[0] > plain + 0.5


def test_animation_has_one_frame_per_iteration(tmp_path):
    from PIL import Image

    a, b = np.linspace(-0.5, 2.3, 20), np.linspace(-0.3, 1.15, 15)
    values = np.exp(-np.add.outer(b, a) ** 2) + 1e-3
    frames = 17
    t = np.linspace(0, 1, frames)
    paths = landscape.animate(tmp_path / "anim.gif", a, b, values,
                              {"flow": (np.stack([t, t / 2], 1), "black"), "sgd": (np.stack([2 * t, t], 1), "green")},
                              {"w_init": (0, 0)}, np.arange(frames), fps=10, hold_s=1.0)
    assert paths[0] == tmp_path / "anim.gif"
    with Image.open(paths[0]) as gif:
        assert gif.n_frames == frames
        gif.seek(0)
        first = np.asarray(gif.convert("RGB")).copy()
        gif.seek(frames - 1)
        last = np.asarray(gif.convert("RGB"))
        assert gif.info["duration"] == 1000  # the final frame is held
    assert (first != last).any()


def test_loss_surface_runs_reproduce_the_papers_printed_numbers():
    """GF (GD eta=0.03) and GD (eta=3, /3 at the midpoint) are deterministic: the paper's notebook prints
    their final train and test losses."""
    data = sparse_regression(20, 30, 3)
    steps = np.stack([Schedule(0.03).values(10_001), Schedule(3.0, ((0.5, 3.0),)).values(10_001)])
    u, v = diag_nets.init(2, 30)
    diag_nets.train(u, v, data.x_train, data.y_train, steps, "gd", [0, 0], np.array([10_001]), lambda k: None)
    beta = u * v
    train = diag_nets.loss(data.x_train, data.y_train, beta)
    np.testing.assert_allclose(train[0], 4.902335457375223e-06, rtol=1e-9)
    # GD at the edge of stability amplifies rounding (summation order, which follows the CPU's vector unit): on an
    # AVX2 machine this 1e-10 loss is 0.12% off the paper's, so 2 digits are what holds across machines
    np.testing.assert_allclose(train[1], 1.6436803027068225e-10, rtol=1e-2)
    test = diag_nets.loss(data.x_test, data.y_test, beta)
    np.testing.assert_allclose(test[0], 0.014909591370857017, rtol=1e-9)
    np.testing.assert_allclose(test[1], 0.12648761921433635, rtol=1e-4)


@pytest.mark.slow
def test_reproduce_writes_results_figures_and_animation(tmp_path):
    from PIL import Image

    assert main(["reproduce", "stabilization_1d", "loss_surface", "--quick", "--seeds", "2",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    stab = json.loads((tmp_path / "stabilization_1d.json").read_text())
    assert [r["lr"] for r in stab["runs"]][:3] == [0.8, 1.02, 2.0]
    below, inside, divergent = stab["runs"][:3]
    assert divergent["diverged"] is True and not below["diverged"] and not inside["diverged"]
    assert set(inside["final_median"]) >= {"loss_min_last_half", "loss_max_last_half"}
    assert inside["final_median"]["loss_min_last_half"] > 1e-4 and below["final_median"]["loss_max_last_half"] < 1e-20

    surf = json.loads((tmp_path / "loss_surface.json").read_text())
    assert [r["algorithm"] for r in surf["runs"]] == ["gd", "gd", "sgd"]
    for run in surf["runs"]:
        assert set(run["final_median"]) >= {"train_loss", "test_loss", "distance_to_w_star"}
    n = surf["config"]["grid_points"]
    assert len(surf["surface"]["a"]) == len(surf["surface"]["b"]) == n
    assert np.array(surf["surface"]["train_loss"]).shape == (n, n)
    for stem in ("stabilization_1d", "loss_surface", "loss_surface_curves"):
        assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
    with Image.open(tmp_path / "loss_surface_animation.gif") as gif:
        assert gif.n_frames == len(surf["animation"]["iteration"])


def test_animation_frames_equal_a_full_redraw_of_each_frame(tmp_path, fake_ffmpeg):
    """animate() redraws only small pixel boxes per frame; each frame must equal the same scene drawn whole:
    the clean background, every trail segment so far, the heads, then the counter written over the frame.  The trajectories
    cross each other, pass under the counter and leave the axes (boxes clipped at the canvas' edge).  The MP4's
    frames, sent to ffmpeg as they are made, must be the same frames before the GIF's palette, the last one held."""
    from PIL import Image

    a, b = np.linspace(-0.5, 2.3, 20), np.linspace(-0.3, 1.15, 15)
    values = np.exp(-np.add.outer(b, a) ** 2) + 1e-3
    t = np.linspace(0, 1, 23)
    trajectories = {"flow": (np.stack([2.3 * t - 0.2, 0.2 + t], 1), "black"),
                    "sgd": (np.stack([2.2 - 3 * t, -0.25 + 0.3 * np.sin(9 * t)], 1), "#00b000")}
    iterations = (t * 1e5).astype(int)
    path, mp4 = landscape.animate(tmp_path / "anim.gif", a, b, values, trajectories, {"w_init": (0, 0)}, iterations,
                                  fps=10, size=(3.2, 2.6), dpi=80, hold_s=0.5)
    assert mp4 == tmp_path / "anim.mp4"
    args = eval(fake_ffmpeg.read_text().splitlines()[0])
    width, height = map(int, args[args.index("-s") + 1].split("x"))
    assert args[args.index("-pix_fmt") + 1] == "rgba" and args[args.index("-r") + 1] == "10"
    sent = np.frombuffer(mp4.read_bytes(), np.uint8).reshape(-1, height, width, 4)
    assert len(sent) == len(iterations) + 5  # hold_s * fps more of the last frame
    assert (sent[len(iterations):] == sent[len(iterations) - 1]).all() and (sent[..., 3] == 255).all()

    scene = landscape.animation_scene(a, b, values, trajectories, {"w_init": (0, 0)}, size=(3.2, 2.6), dpi=80)
    scene.canvas.draw()
    clean = scene.canvas.copy_from_bbox(scene.fig.bbox)
    palette = None
    with Image.open(path) as gif:
        for k in range(len(iterations)):
            scene.canvas.restore_region(clean)
            for j in range(1, k + 1):
                for line, (c, _) in zip(scene.lines, trajectories.values()):
                    line.set_data(c[j - 1 : j + 1, 0], c[j - 1 : j + 1, 1])
                    scene.ax.draw_artist(line)
            for head, (c, _) in zip(scene.heads, trajectories.values()):
                head.set_data(c[k : k + 1, 0], c[k : k + 1, 1])
                scene.ax.draw_artist(head)
            frame = Image.fromarray(np.asarray(scene.canvas.buffer_rgba())[..., :3])
            scene.counter.draw(frame, f"iteration {iterations[k]:,}")
            assert np.array_equal(sent[k, ..., :3], np.asarray(frame)), f"MP4 frame {k} differs"
            if palette is None:
                palette = frame.quantize(colors=255, method=Image.Quantize.MEDIANCUT)
            expected = np.asarray(frame.quantize(palette=palette, dither=Image.Dither.NONE).convert("RGB"))
            gif.seek(k)
            assert np.array_equal(np.asarray(gif.convert("RGB")), expected), f"frame {k} differs"


def test_a_failing_ffmpeg_is_reported_and_leaves_no_mp4(tmp_path, fake_ffmpeg, monkeypatch):
    monkeypatch.setenv("FAKE_FFMPEG_MODE", "fail")
    with pytest.raises(subprocess.CalledProcessError) as failure:
        _small_animation(tmp_path)
    assert failure.value.returncode == 1 and failure.value.cmd[0].endswith("ffmpeg")
    assert not [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4" or p.name.startswith(".")]


def test_an_interrupted_animation_stops_ffmpeg_and_leaves_nothing(tmp_path, fake_ffmpeg, monkeypatch):
    """Ctrl-C while frames are being made: ffmpeg is stopped (not left running), no file half-written."""
    draw = landscape.Counter.draw
    calls = []

    def interrupted(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(landscape.Counter, "draw", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _small_animation(tmp_path)
    pid = int(fake_ffmpeg.read_text().splitlines()[1])
    with pytest.raises(ProcessLookupError):  # killed and reaped
        os.kill(pid, 0)
    assert not [p.name for p in tmp_path.iterdir() if p.suffix in (".mp4", ".gif") or p.name.startswith(".")]


def test_without_ffmpeg_only_the_gif_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "nothing_here"))
    assert _small_animation(tmp_path) == [tmp_path / "anim.gif"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anim.gif"]
