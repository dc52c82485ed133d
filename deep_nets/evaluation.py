"""What `train.py` measures at each evaluation: loss and error, the weight average's BN statistics, and the
per-block feature sparsity on fixed training examples and subsampled neurons."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from largestep.metrics import feature_sparsity
from largestep.streams import torch_stream

from deep_nets.data import as_inputs

N_BLOCKS = 5  # every model returns the features of five blocks


def refresh_bn(model, x, batch_size: int, n_examples: int) -> None:
    """Re-estimate BatchNorm statistics of `model` (the weight average) as plain means over batches of x[:n_examples]."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns or n_examples == 0:
        return
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the refresh batches
    model.train()
    with torch.no_grad():
        for i in range(0, min(n_examples, len(x)), batch_size):
            model(as_inputs(x[i:min(i + batch_size, n_examples)]))
    model.eval()


def loss_and_error(model, x, y, batch_size: int, on_features=None) -> tuple[float, float]:
    """Mean cross-entropy and error rate of `model` on (x, y) in eval mode; on_features(blocks) sees each batch's blocks."""
    model.eval()
    total_loss = torch.zeros((), device=x.device, dtype=torch.float64)
    wrong = torch.zeros((), device=x.device, dtype=torch.int64)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = model(as_inputs(x[i:i + batch_size]), features=on_features is not None)
            logits = out[0] if on_features is not None else out
            target = y[i:i + batch_size]
            total_loss += F.cross_entropy(logits, target, reduction="sum").double()
            wrong += (logits.argmax(1) != target).sum()
            if on_features is not None:
                on_features(out[1])
    return total_loss.item() / len(x), wrong.item() / len(x)


def block_sparsity(model, x, y, neuron_idx, block_sizes, batch_size: int, *, corr_threshold: float) -> dict:
    """Train loss/error and per-block feature sparsity (raw and de-duplicated) on the fixed examples x.

    Raw: fraction of positive entries over all neurons of the block.  De-duplicated (spec): the
    subsampled neurons' features (examples x neurons), near-duplicates at |corr| > corr_threshold removed by the
    package's metric on the features' device, positive entries over kept / (examples x subsampled).
    """
    positive = [torch.zeros((), device=x.device, dtype=torch.int64) for _ in neuron_idx]
    sampled = [[] for _ in neuron_idx]

    def collect(blocks):
        for k, (feat, idx) in enumerate(zip(blocks, neuron_idx)):
            flat = feat.flatten(1)
            positive[k] += (flat > 0).sum()
            sampled[k].append(flat[:, idx].float())  # bf16 features: correlations in fp32
    out = dict(zip(("train_loss", "train_err"), loss_and_error(model, x, y, batch_size, collect)))
    for k, (pos, feats) in enumerate(zip(positive, sampled), start=1):
        out[f"feature_sparsity_block{k}"] = feature_sparsity(torch.cat(feats), corr_threshold=corr_threshold,
                                                           normalize_rows=False)
        out[f"feature_sparsity_raw_block{k}"] = pos.item() / (len(x) * block_sizes[k - 1])
    return out


def choose_neurons(model, data, n_neurons: int, seed: int, device) -> tuple[list[int], list[torch.Tensor]]:
    """A fixed random subset of at most n_neurons neurons of each block (channel x position each)."""
    model.eval()
    with torch.no_grad():
        _, blocks = model(as_inputs(data.x_train[:1]).to(device), features=True)
    sizes = [b[0].numel() for b in blocks]
    if len(sizes) != N_BLOCKS:
        raise ValueError(f"model returned {len(sizes)} feature blocks, expected {N_BLOCKS}")
    g = torch_stream("sparsity_neurons", seed)
    return sizes, [torch.randperm(s, generator=g)[:n_neurons].sort().values.to(device) for s in sizes]
