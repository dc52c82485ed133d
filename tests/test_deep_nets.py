"""deep_nets: schedules against the paper's formulas, every model for one epoch on CIFAR-format files, resume,
the block-sparsity metric against a plain loop, --download against a local HTTP server, and bad input."""
from __future__ import annotations

import functools
import hashlib
import http.server
import io
import json
import math
import os
import pickle
import shlex
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import oracles
from largestep.config import ConfigError
from largestep.schedules import DEEP_SCHEDULES, lr_schedule

from deep_nets import data as dn_data
from deep_nets import evaluation as dn_evaluation
from deep_nets import loop as dn_loop
from deep_nets import progress as dn_progress
from deep_nets import train as dn_train
from deep_nets.models import MODELS, build_model

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parent.parent

TIMING = {"time_train", "time_eval", "images_per_s"}


# ---------------------------------------------------------------- schedules

def spec_lr(name, t, T, eta, wf, w):
    """The paper's deep-net schedules, transcribed branch by branch (scalar, no numpy)."""
    x = t / T
    if name == "constant":
        return eta
    if name == "piecewise":
        return eta if x < 0.5 else eta / 10 if x < 0.75 else eta / 100
    if name == "cosine":
        return eta * (0.5 + 0.5 * math.cos(math.pi * t / T))
    if name.startswith("step_"):  # the control: a flat large step until f, then /10 and /100 from 0.9
        f = {"step_01epochs": 0.1, "step_03epochs": 0.3, "step_05epochs": 0.5}[name]
        return eta if x < f else eta / 10 if x < 0.9 else eta / 100
    f = {"piecewise_01epochs": 0.1, "piecewise_03epochs": 0.3, "piecewise_05epochs": 0.5}[name]
    if w > 1:
        return eta * w ** (100 * t / T) if x < f else w ** (100 * f) * eta / (10 if x < 0.9 else 100)
    if w < 1:
        return eta * (1 + (100 * t / T) ** w) if x < f else (1 + (100 * f) ** w) * eta / (10 if x < 0.9 else 100)
    if x < f:  # linear from eta at t = 0 to wf * eta at t = T/2
        return eta + (wf * eta - eta) * t / (0.5 * T)
    return (f / 0.5) * wf * eta / (10 if x < 0.9 else 100)


@pytest.mark.parametrize("name", DEEP_SCHEDULES)
@pytest.mark.parametrize("w,wf", [(1.05, 1.0), (0.5, 1.0), (1.0, 1.0), (1.0, 3.0)])
def test_schedule_matches_spec_formula(name, w, wf):
    T, eta = 37, 0.75
    ts = np.concatenate([np.linspace(0, T, 1001), [0.1 * T, 0.3 * T, 0.5 * T, 0.75 * T, 0.9 * T]])
    sched = lr_schedule(name, T, eta, warmup_factor=wf, warmup_exp=w)
    expected = np.array([spec_lr(name, t, T, eta, wf, w) for t in ts])
    np.testing.assert_allclose(sched(ts), expected, rtol=1e-12)  # array form
    assert all(math.isclose(sched(float(t)), e, rel_tol=1e-12) for t, e in zip(ts[::50], expected[::50]))


def test_schedule_parity_note_and_errors():
    # spec: with warmup_factor 1 the post-decay step is eta/50, 3 eta/50, eta/10 for f = 0.1, 0.3, 0.5
    for name, ratio in (("piecewise_01epochs", 1 / 50), ("piecewise_03epochs", 3 / 50), ("piecewise_05epochs", 1 / 10)):
        assert math.isclose(lr_schedule(name, 100, 1.0)(60.0), ratio)
    with pytest.raises(ConfigError):
        lr_schedule("linear", 100, 0.1)
    with pytest.raises(ConfigError):
        lr_schedule("constant", 100, -0.1)
    with pytest.raises(ConfigError):
        lr_schedule("piecewise_05epochs", 100, 0.1, warmup_exp=0.0)


# ---------------------------------------------------------------- data helpers

def write_cifar10(folder: Path, n_per_batch=40, seed=0) -> dict:
    """CIFAR-10 python-format batches of synthetic images; returns {file: md5}."""
    ds = dn_data.synthetic(n_train=5 * n_per_batch, n_test=n_per_batch, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    parts = {f"data_batch_{i + 1}": (ds.x_train[i * n_per_batch:(i + 1) * n_per_batch],
                                     ds.y_train[i * n_per_batch:(i + 1) * n_per_batch]) for i in range(5)}
    parts["test_batch"] = (ds.x_test, ds.y_test)
    md5 = {}
    for name, (x, y) in parts.items():
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x.reshape(len(x), -1).numpy(), b"labels": y.tolist()}, f)
        md5[name] = hashlib.md5((folder / name).read_bytes()).hexdigest()
    return md5


def run_cli(args, capsys=None):
    code = dn_train.main([str(a) for a in args])
    return code, (capsys.readouterr() if capsys else None)


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def only_run(root: Path) -> Path:
    runs = [p.parent for p in root.rglob("metrics.jsonl")]
    assert len(runs) == 1, runs
    return runs[0]


# ---------------------------------------------------------------- one epoch of every model

REQUIRED = (["iteration", "epoch", "lr", "train_loss", "train_err", "test_loss", "test_err", "test_err_ema",
             "time_train", "time_eval", "images_per_s"]
            + [f"feature_sparsity_block{k}" for k in range(1, 6)]
            + [f"feature_sparsity_raw_block{k}" for k in range(1, 6)])


@pytest.mark.parametrize("model", [m if m == "mlp" else pytest.param(m, marks=pytest.mark.slow) for m in MODELS])
def test_one_epoch_every_model_on_cifar_format_files(model, tmp_path, capsys):
    write_cifar10(tmp_path / "data" / "cifar-10-batches-py")
    code, out = run_cli(["--dataset=cifar10", f"--data_dir={tmp_path / 'data'}", "--skip_checksum", f"--model={model}",
                         "--model_width=4" if model != "mlp" else "--model_width=32", "--epochs=1", "--batch_size=50",
                         "--eval_iter_freq=3", "--lr_init=0.05", "--momentum=0.9", "--l2_reg=5e-4", "--device=cpu",
                         f"--out_dir={tmp_path / 'runs'}", "--sparsity_examples=120", "--bn_refresh_examples=100"], capsys)
    assert code == 0, out.err
    run_dir = only_run(tmp_path / "runs")
    rows = read_metrics(run_dir)
    assert [r["iteration"] for r in rows] == [0, 3, 4]  # init, every 3 iterations, the end (200 // 50 = 4 steps)
    assert rows[-1]["epoch"] == 1.0
    for key in REQUIRED:
        assert key in rows[-1], key
    for k in range(1, 6):
        for prefix in ("feature_sparsity_block", "feature_sparsity_raw_block"):
            assert 0.0 <= rows[-1][f"{prefix}{k}"] <= 1.0
    assert rows[-1]["images_per_s"] > 0 and rows[-1]["time_eval"] > 0
    config = json.loads((run_dir / "config.json").read_text())
    assert config["args"]["model"] == model and config["steps_per_epoch"] == 4 and "torch" in config["versions"]
    assert config["command"].startswith("python deep_nets/train.py ")  # no absolute path of this machine
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert state["iteration"] == 4


@pytest.mark.slow
def test_config_records_the_evaluation_sizes_threshold_and_random_streams(tmp_path, capsys):
    """config.json says how the metrics were measured; the threshold reaches the metric (a lower one merges more)."""
    args = ["--dataset=synthetic", "--model=resnet_tiny", "--model_width=4", "--epochs=1", "--batch_size=128",
            "--device=cpu", "--seed=3", "--sparsity_examples=100000", "--sparsity_neurons=50",
            "--bn_refresh_examples=64", "--stop_at_iteration=1"]
    first_rows = {}
    for threshold in (1.0, 0.3):
        out_dir = tmp_path / f"corr{threshold}"
        assert run_cli(args + [f"--corr_threshold={threshold}", f"--out_dir={out_dir}"], capsys)[0] == 0
        run_dir = only_run(out_dir)
        config = json.loads((run_dir / "config.json").read_text())
        first_rows[threshold] = read_metrics(run_dir)[0]
        data = dn_data.load_dataset("synthetic", tmp_path)
        assert config["args"]["corr_threshold"] == threshold
        assert config["evaluation"] == {"corr_threshold": threshold, "sparsity_examples": len(data.x_train),
                                        "sparsity_neurons_per_block": 50, "bn_refresh_examples": 64,
                                        "test_examples": len(data.x_test), "batch_size": 128}
        offsets = config["random_stream_offsets"]
        assert set(offsets) == {"sparsity_examples", "sparsity_neurons"} and len(set(offsets.values())) == 2
        assert config["random_streams"] == {"data_order_and_augmentation": 3, "initialization": 3,
                                            **{k: 3 + v for k, v in offsets.items()}}
    merged = [first_rows[0.3][f"feature_sparsity_block{k}"] < first_rows[1.0][f"feature_sparsity_block{k}"]
              for k in range(1, 6)]
    assert all(first_rows[0.3][f"feature_sparsity_block{k}"] <= first_rows[1.0][f"feature_sparsity_block{k}"]
               for k in range(1, 6)) and any(merged)


def test_checksum_rejects_files_that_are_not_the_official_release(tmp_path, capsys):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    code, out = run_cli(["--dataset=cifar10", f"--data_dir={tmp_path}", "--model=resnet_tiny", "--device=cpu",
                         f"--out_dir={tmp_path / 'runs'}"], capsys)
    assert code == 2
    assert "checksum mismatch" in out.err and "--download" in out.err
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------- resume

RESUME_ARGS = ["--dataset=synthetic", "--model=resnet_tiny", "--model_width=4", "--epochs=2", "--batch_size=128",
               "--eval_iter_freq=5", "--lr_init=0.05", "--lr_schedule=piecewise_05epochs", "--warmup_exp=1.05",
               "--momentum=0.9", "--l2_reg=5e-4", "--device=cpu", "--sparsity_examples=256", "--bn_refresh_examples=100",
               "--eval_batch_size=256"]


def strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_resume_equals_uninterrupted_run(tmp_path, capsys):
    assert run_cli(RESUME_ARGS + [f"--out_dir={tmp_path / 'a'}"], capsys)[0] == 0
    code, _ = run_cli(RESUME_ARGS + [f"--out_dir={tmp_path / 'b'}", "--stop_at_iteration=7"], capsys)
    assert code == 0
    partial = read_metrics(only_run(tmp_path / "b"))
    assert [r["iteration"] for r in partial] == [0, 5]
    code, out = run_cli(RESUME_ARGS + [f"--out_dir={tmp_path / 'b'}"], capsys)
    assert code == 2 and "--resume" in out.err  # an existing run is never silently overwritten
    assert run_cli(RESUME_ARGS + [f"--out_dir={tmp_path / 'b'}", "--resume"], capsys)[0] == 0
    a, b = read_metrics(only_run(tmp_path / "a")), read_metrics(only_run(tmp_path / "b"))
    assert [r["iteration"] for r in a] == [0, 5, 10, 15, 16]
    assert strip_timing(a) == strip_timing(b)  # bit-for-bit on CPU
    # a flag that changes what a run computes names another run directory: a new run, beside the finished one
    code, out = run_cli(RESUME_ARGS + [f"--out_dir={tmp_path / 'b'}", "--resume", "--swa_tau=0.99",
                                       "--stop_at_iteration=1"], capsys)
    assert code == 0 and "stopped at iteration 1" in out.out
    assert len(list((tmp_path / "b").rglob("metrics.jsonl"))) == 2


@pytest.mark.slow
def test_resume_of_a_run_older_than_a_flag_takes_its_default(tmp_path, capsys):
    """A run started before --corr_threshold existed was measured at 0.95: it resumes at the default; a config that
    records other settings than the flags (edited, or an older naming) is refused, naming them."""
    args = RESUME_ARGS + [f"--out_dir={tmp_path}"]
    assert run_cli(args + ["--stop_at_iteration=3"], capsys)[0] == 0
    config_path = only_run(tmp_path) / "config.json"
    config = json.loads(config_path.read_text())
    del config["args"]["corr_threshold"]
    config["args"]["swa_tau"] = 0.99
    config_path.write_text(json.dumps(config))
    code, out = run_cli(args + ["--resume"], capsys)
    assert code == 2 and out.err == f"error: --resume with different settings than the run in {only_run(tmp_path)}: swa_tau\n"
    del config["args"]["swa_tau"]
    config_path.write_text(json.dumps(config))
    assert run_cli(args + ["--resume"], capsys)[0] == 0
    assert read_metrics(only_run(tmp_path))[-1]["iteration"] == 16


@pytest.mark.slow
def test_compile_that_fails_falls_back_to_eager_from_the_same_batch(tmp_path, capsys, monkeypatch):
    """--compile where torch.compile cannot work: one line says why and the run is the eager run, bit for bit."""
    def failing_compile(module):
        def call(*args, **kwargs):
            raise RuntimeError("no C++ compiler found.\nmore detail")
        return call
    monkeypatch.setattr(dn_loop.torch, "compile", failing_compile)
    args = RESUME_ARGS + ["--stop_at_iteration=6"]
    assert run_cli(args + [f"--out_dir={tmp_path / 'eager'}"], capsys)[0] == 0
    code, out = run_cli(args + [f"--out_dir={tmp_path / 'compiled'}", "--compile"], capsys)
    assert code == 0
    assert out.out.count("--compile: torch.compile failed (RuntimeError: no C++ compiler found.); training without it") == 1
    eager, fallen_back = (read_metrics(only_run(tmp_path / d)) for d in ("eager", "compiled"))
    assert strip_timing(eager) == strip_timing(fallen_back)


@pytest.mark.slow
def test_bf16_runs_under_autocast_in_a_run_of_its_own(tmp_path, capsys):
    args = RESUME_ARGS + [f"--out_dir={tmp_path}", "--stop_at_iteration=5"]
    assert run_cli(args + ["--precision=bf16"], capsys)[0] == 0 and run_cli(args, capsys)[0] == 0
    runs = sorted(p.parent for p in tmp_path.rglob("metrics.jsonl"))
    assert [p.name[len(runs[0].name):] for p in runs] == ["", "_bf16"]  # fp32 keeps its old name
    fp32, bf16 = (read_metrics(p)[-1] for p in runs)
    assert fp32["train_loss"] != bf16["train_loss"]  # the arithmetic did change
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.05)


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_resume_matches(tmp_path, capsys):
    """SIGTERM once the evaluation at iteration 5 is printed (read from the pipe, not raced against a file):
    train.py finishes its step, saves, exits 143; the resumed run equals an uninterrupted one."""
    args = RESUME_ARGS + ["--epochs=3"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "deep_nets" / "train.py")] + args + [f"--out_dir={tmp_path / 'b'}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("iteration      5 "):
            break
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    if proc.returncode == 0:
        pytest.skip("run finished before the signal arrived")  # 19 steps of a tiny net against one signal
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "checkpoint saved" in stdout
    run_dir = only_run(tmp_path / "b")
    stopped = torch.load(run_dir / "checkpoint.pt", weights_only=True)["iteration"]
    assert 5 <= stopped < 24
    assert run_cli(args + [f"--out_dir={tmp_path / 'b'}", "--resume"], capsys)[0] == 0
    assert run_cli(args + [f"--out_dir={tmp_path / 'a'}"], capsys)[0] == 0
    assert strip_timing(read_metrics(only_run(tmp_path / "a"))) == strip_timing(read_metrics(run_dir))


@pytest.mark.slow
def test_the_smoke_run_of_help_speaks_at_once_and_fits_the_generated_set(tmp_path):
    """The recipe --help gives: its first line before torch is imported, no throughput claimed before any training,
    and three epochs that fit the synthetic set."""
    from deep_nets.flags import SMOKE

    argv = shlex.split(SMOKE)[2:-1] + [f"--out_dir={tmp_path}"]
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(ROOT / "deep_nets" / "train.py"), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stdout.readline()
    first_s = time.perf_counter() - start
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    assert first.startswith("train.py: resnet_tiny of width 8 on synthetic, 3 epochs of batch 64, into ") and first_s < 5
    evaluations = [line for line in rest.splitlines() if line.startswith("iteration ")]
    assert "img/s" not in evaluations[0] and all("img/s" in line for line in evaluations[1:])
    assert read_metrics(only_run(tmp_path))[-1]["train_err"] < 0.1 < read_metrics(only_run(tmp_path))[0]["train_err"]


# ---------------------------------------------------------------- the sparsity metric

def test_block_sparsity_equals_reference_loop_on_random_features():
    rng = np.random.default_rng(0)
    for trial, threshold in enumerate((0.95, 0.95, 0.7)):
        n, m = 300, 90
        base = rng.standard_normal((n, 30))
        mix = rng.standard_normal((30, m)) * (rng.random(m) < 0.5)  # some neurons silent, some related
        feats = base @ mix
        feats[:, 10:30] = feats[:, :20] * rng.uniform(0.5, 2, 20) + 0.05 * rng.standard_normal((n, 20))  # near copies
        feats = np.maximum(feats - rng.uniform(0, 1, m), 0)
        idx = np.sort(rng.permutation(m)[:60])
        raw, dedup = oracles.block_sparsity(feats, idx, threshold)

        class Fixed(torch.nn.Module):  # a "model" whose single block is the given features
            def forward(self, x, features=False):
                f = x.float()
                return torch.zeros(len(x), 2), [f] * 5
        out = dn_evaluation.block_sparsity(Fixed(), torch.as_tensor(feats, dtype=torch.float32), torch.zeros(n, dtype=torch.long),
                                      [torch.as_tensor(idx)] * 5, [m] * 5, batch_size=64, corr_threshold=threshold)
        assert math.isclose(out["feature_sparsity_raw_block1"], raw, rel_tol=1e-12)
        assert math.isclose(out["feature_sparsity_block1"], dedup, rel_tol=1e-9), (trial, out["feature_sparsity_block1"], dedup)
        assert dedup < (feats[:, idx] > 0).mean()  # the near copies were found


@pytest.mark.parametrize("model", MODELS)
def test_models_return_five_rectified_blocks_that_feed_the_head(model):
    torch.manual_seed(0)
    net = build_model(model, 4 if model != "mlp" else 16, 7, (3, 16, 16)).eval()
    x = torch.rand(5, 3, 16, 16)
    logits, blocks = net(x, features=True)
    assert len(blocks) == 5 and logits.shape == (5, 7)
    assert all((b >= 0).all() for b in blocks)
    torch.testing.assert_close(net.linear(blocks[-1]), logits)  # block 5 is the penultimate vector
    torch.testing.assert_close(net(x), logits)


def test_crop_and_flip_equals_per_image_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 8, 10, generator=g)
    offsets = torch.randint(9, (6, 2), generator=g)
    flips = torch.rand(6, generator=g) < 0.5
    out = dn_data.crop_and_flip(x, offsets, flips)
    for i in range(6):
        padded = torch.nn.functional.pad(x[i], (4, 4, 4, 4))
        crop = padded[:, offsets[i, 0]:offsets[i, 0] + 8, offsets[i, 1]:offsets[i, 1] + 10]
        torch.testing.assert_close(out[i], crop.flip(2) if flips[i] else crop)


# ---------------------------------------------------------------- --download against 127.0.0.1

@pytest.fixture
def archive_server(tmp_path):
    files = write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "cifar.tar.gz").write_bytes(buf.getvalue())
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/cifar.tar.gz", hashlib.md5(buf.getvalue()).hexdigest(), files
    server.shutdown()


def test_download_good_checksum_extracts_and_loads(archive_server, tmp_path):
    url, md5, files = archive_server
    target = tmp_path / "data"
    dn_data.download("cifar10", target, url=url, archive_md5=md5)
    assert sorted(os.listdir(target)) == ["cifar-10-batches-py"]  # no archive or temp file left behind
    ds = dn_data.load_cifar("cifar10", target, expected_md5=files)
    assert ds.x_train.shape == (200, 3, 32, 32) and ds.x_train.dtype == torch.uint8 and len(ds.y_test) == 40


def test_download_bad_checksum_extracts_nothing(archive_server, tmp_path):
    url, md5, _ = archive_server
    target = tmp_path / "data"
    with pytest.raises(dn_data.DataError, match="MD5"):
        dn_data.download("cifar10", target, url=url, archive_md5="0" * 32)
    assert os.listdir(target) == []


# ---------------------------------------------------------------- bad input

def test_bad_flags_exit_2(tmp_path, capsys):
    flat = tmp_path / "flat.npz"
    np.savez(flat, x_train=np.zeros((8, 40), np.float32), y_train=np.arange(8) % 2,
             x_test=np.zeros((4, 40), np.float32), y_test=np.arange(4) % 2)
    for bad in (["--lr_schedule=linear"], ["--model=vgg"], ["--epochs=x"]):
        with pytest.raises(SystemExit) as exc:
            dn_train.main(bad)
        assert exc.value.code == 2
    for bad, words in ((["--epochs=0"], "--epochs"), (["--momentum=1.5"], "--momentum"),
                       (["--lr_init=-1"], "lr_init"), (["--corr_threshold=0"], "--corr_threshold"),
                       (["--corr_threshold=1.5"], "--corr_threshold"), (["--corr_threshold=nan"], "--corr_threshold"), (["--dataset=imagenet"], "unknown dataset"),
                       ([f"--dataset=npz:{flat}", "--model=resnet18_plain", "--batch_size=4"], "--model=mlp"),
                       ([f"--dataset=npz:{tmp_path / 'none.npz'}"], "no such npz file")):
        code, out = run_cli(bad + ["--device=cpu", f"--out_dir={tmp_path}"], capsys)
        assert code == 2 and words in out.err, (bad, out.err)


def test_missing_data_names_files_and_download_flag(tmp_path, capsys):
    code, out = run_cli(["--dataset=cifar100", f"--data_dir={tmp_path}", "--device=cpu", f"--out_dir={tmp_path}"], capsys)
    assert code == 2
    assert "cifar-100-python" in out.err and "train, test" in out.err and "--download" in out.err
    assert "Traceback" not in out.err


def test_unwritable_out_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    code, out = run_cli(["--dataset=synthetic", "--model=resnet_tiny", "--device=cpu", f"--out_dir={blocker}"], capsys)
    assert code == 2 and "cannot write to out_dir" in out.err


def test_published_command_parses_unchanged():
    published = ("--dataset=cifar10 --lr_init=0.75 --lr_schedule=piecewise_05epochs --warmup_exp=1.05 "
                 "--model=resnet18_plain --model_width=64 --epochs=100 --batch_size=256 --momentum=0.0 --l2_reg=0.0 "
                 "--no_data_augm --eval_iter_freq=200 --exp_name=no_explicit_reg").split()
    args = dn_train.build_parser().parse_args(published)
    dn_train.check_args(args)
    assert args.no_data_augm and args.warmup_exp == 1.05 and args.swa_tau == 0.999


# ---------------------------------------------------------------- data sets

def test_train_stream_visits_each_example_once_per_epoch_and_drops_the_last_batch():
    x = torch.arange(10, dtype=torch.float32)[:, None]
    stream = dn_data.TrainStream(x, torch.arange(10), batch_size=3, augment=False, seed=0)
    assert stream.steps_per_epoch == 3
    for _ in range(4):  # epochs
        seen = torch.cat([stream.next()[0].flatten() for _ in range(3)])
        assert len(set(seen.tolist())) == 9  # 9 distinct examples, the 10th dropped this epoch
    first = dn_data.TrainStream(x, torch.arange(10), 3, False, seed=1)
    again = dn_data.TrainStream(x, torch.arange(10), 3, False, seed=1)
    assert all(torch.equal(first.next()[0], again.next()[0]) for _ in range(7))


def test_mnist1d_is_generated_locally_and_cached(tmp_path, monkeypatch):
    import urllib.request

    import requests

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d must not touch the network")
    monkeypatch.setattr(requests, "get", no_network)
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    state = np.random.get_state()
    ds = dn_data.load_mnist1d(tmp_path)
    assert (tmp_path / "mnist1d.npz").is_file()
    assert ds.x_train.shape == (4000, 40) and ds.x_test.shape == (1000, 40) and ds.num_classes == 10
    assert np.array_equal(np.random.get_state()[1], state[1])  # numpy's global stream left as it was
    again = dn_data.load_mnist1d(tmp_path)
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_test, ds.y_test)


@pytest.mark.slow
def test_synthetic_data_is_learnable(tmp_path, capsys):
    code, out = run_cli(["--dataset=synthetic", "--model=resnet_tiny", "--model_width=8", "--epochs=3", "--batch_size=64",
                         "--lr_init=0.05", "--momentum=0.9", "--no_data_augm", "--eval_iter_freq=1000", "--device=cpu",
                         "--sparsity_examples=256", "--bn_refresh_examples=256", f"--out_dir={tmp_path}"], capsys)
    assert code == 0, out.err
    first, last = read_metrics(only_run(tmp_path))[::len(read_metrics(only_run(tmp_path))) - 1]
    assert first["train_err"] > 0.8 and last["train_err"] < 0.2 and last["test_err"] < 0.3


def test_a_diverging_run_stops_reports_and_is_not_resumed(tmp_path, capsys):
    args = ["--dataset=synthetic", "--model=mlp", "--model_width=32", "--epochs=2", "--batch_size=64", "--lr_init=1e6",
            "--eval_iter_freq=4", "--device=cpu", "--sparsity_examples=128", f"--out_dir={tmp_path}"]
    code, out = run_cli(args, capsys)
    assert code == 1 and "diverged" in out.out
    rows = read_metrics(only_run(tmp_path))
    assert rows[-1]["diverged"] and rows[-1]["iteration"] == 4 and rows[-1]["train_loss"] is None  # NaN -> null
    code, out = run_cli(args + ["--resume"], capsys)
    assert code == 1 and "nothing to resume" in out.out


@pytest.mark.slow
def test_log_lines_are_labelled_and_progress_shows_within_an_interval(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dn_progress, "PROGRESS_EVERY_S", 0.0)  # without a terminal (as here): a line per iteration
    code, out = run_cli(RESUME_ARGS + [f"--out_dir={tmp_path}", "--epochs=1"], capsys)
    assert code == 0, out.err
    lines = out.out.splitlines()
    evaluations = [ln for ln in lines if ln.startswith("iteration ")]
    assert len(evaluations) == 3  # iterations 0, 5 and 8 (1024 // 128 = 8 steps per epoch)
    for label in ("epoch", "lr", "train loss", "test loss", "EMA test err", "feature sparsity blocks 1-5", "img/s"):
        assert label in evaluations[-1], label
    between = [ln.strip() for ln in lines if ln.startswith("  iteration ")]
    assert [ln.split()[1] for ln in between] == [str(k) for k in range(1, 9)]
    assert "next evaluation at 5 " in between[0] and "next evaluation at 8 " in between[5]
