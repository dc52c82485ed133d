"""deep_nets speed on this machine: training images/s, evaluation's share, and the sparsity metric's speed.

    .venv/bin/python benchmarks/bench_deep.py [--device cpu|cuda] [--repeats 5] [--threads N]

Reports medians (the machine may be shared: compare ratios, not absolute times):
1. training images/s of resnet_tiny (width 16) and resnet18_plain (width 64), batch 64 (CPU) or 256 (GPU);
2. one evaluation as train.py does it at CIFAR scale (10,752 training examples with features of all five
   blocks, 10,000 test images for the model and for its weight average, 5,000 training images re-estimating BN
   statistics, the five de-duplications), relative to 200 training iterations of batch 256;
3. the de-duplicated sparsity of one block (10,752 examples x 1,000 neurons): the package's torch metric
   (float32, on the device) against a plain numpy version (np.corrcoef in float64 + a greedy scan), the
   way the paper's code computes it.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from deep_nets.models import build_model
from largestep.metrics import feature_sparsity


def timed(fn, repeats: int, device) -> float:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def numpy_dedup_sparsity(phi: np.ndarray, threshold: float = 0.95) -> float:
    """The numpy way: drop dead neurons, np.corrcoef (float64), then scan neurons keeping the uncorrelated."""
    live = phi[:, (phi > 0).any(0)]
    corr = np.abs(np.corrcoef(live.T))
    keep = np.ones(live.shape[1], dtype=bool)
    for i in range(live.shape[1]):
        others = keep.copy()
        others[i] = False
        if (corr[i, others] > threshold).any():
            keep[i] = False
    return float((live[:, keep] > 0).sum() / phi.size)


def correlated_relu_features(n: int, m: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 64, generator=g) @ torch.randn(64, m, generator=g)
    z[:, m // 2:] = z[:, :m - m // 2] + 0.1 * torch.randn(n, m - m // 2, generator=g)  # near-duplicates
    return torch.relu(z - 0.5)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, torch {torch.__version__}, {torch.get_num_threads()} threads; medians of {args.repeats}")

    # 3. the metric first: the deep-net evaluation's costliest step
    phi = correlated_relu_features(10752, 1000)
    phi_dev = phi.to(device)
    ours = feature_sparsity(phi_dev, corr_threshold=0.95, normalize_rows=False)
    ref = numpy_dedup_sparsity(phi.double().numpy())
    t_torch = timed(lambda: feature_sparsity(phi_dev, corr_threshold=0.95, normalize_rows=False), args.repeats, device)
    phi_np = phi.double().numpy()
    t_numpy = timed(lambda: numpy_dedup_sparsity(phi_np), args.repeats, torch.device("cpu"))
    print(f"\nde-duplicated sparsity, 10752 x 1000: torch float32 on {device} {t_torch:.3f} s, numpy float64 "
          f"{t_numpy:.3f} s (ratio {t_torch / t_numpy:.2f}); values {ours:.6f} vs {ref:.6f}")

    # 1. and 2.
    batch = 256 if device.type == "cuda" else 64
    for name, width in (("resnet_tiny", 16), ("resnet18_plain", 64)):
        torch.manual_seed(0)
        model = build_model(name, width, 10, (3, 32, 32)).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        x, y = torch.rand(batch, 3, 32, 32, device=device), torch.randint(10, (batch,), device=device)

        def step():
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        step()
        t_step = timed(step, args.repeats, device)
        model.eval()
        eval_batch = 1000 if device.type == "cuda" else 128  # train.py's default
        xe = torch.rand(eval_batch, 3, 32, 32, device=device)
        with torch.no_grad():
            t_fwd_features = timed(lambda: model(xe, features=True), args.repeats, device) / eval_batch
            t_fwd = timed(lambda: model(xe), args.repeats, device) / eval_batch
            _, blocks = model(xe[:2], features=True)
        model.train()
        sizes = [b[0].numel() for b in blocks]
        sampled = [correlated_relu_features(10752, min(1000, k), seed=k).to(device) for k in sizes]
        t_metric = sum(timed(lambda f=f: feature_sparsity(f, 0.95, False), args.repeats, device) for f in sampled)
        per_image = t_step / batch
        t_eval = 10752 * t_fwd_features + (10000 + 10000 + 5000) * t_fwd + t_metric
        t_200 = 200 * 256 * per_image
        print(f"\n{name} (width {width}): training {1 / per_image:.0f} images/s (batch {batch}); "
              f"forward {1 / t_fwd:.0f} images/s")
        print(f"  one CIFAR-scale evaluation {t_eval:.1f} s (forwards {t_eval - t_metric:.1f} s, 5 de-duplications "
              f"{t_metric:.2f} s) = {t_eval / t_200:.1%} of 200 iterations of batch 256 ({t_200:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
