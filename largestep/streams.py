"""Every named random stream of the package: one place for the salts that keep purposes independent.

A training seed s (or a data seed) selects streams; the salt of each purpose keeps two purposes of the same
seed independent, e.g. the SGD sampling order of seed 3 does not correlate with its initialization.  The
data sets of the paper use the paper's own streams instead (`data.py`), so that they equal the paper's draws.
"""
from __future__ import annotations

import numpy as np

# purpose -> salt of numpy's default_rng([seed, salt]) (toy experiments)
SALTS = {
    "sgd_sampling": 0x5EED,  # which example each SGD update uses (diag and ReLU nets)
    "relu_init": 0x1417,  # the ReLU students' initialization
    "rank_points": 0xE7A1,  # the 1-D regression's Jacobian-rank evaluation points (from the data seed)
    "stabilization_inputs": 0x1D,  # the 1-D stabilization model's inputs
}

# purpose -> offset added to the training seed of torch.Generator().manual_seed (deep nets); the data
# order and augmentation use the training seed itself, the initialization torch's global seed.
DEEP_OFFSETS = {
    "sparsity_examples": 10_000,  # the fixed training images on which block sparsity is measured
    "sparsity_neurons": 20_000,  # the subsampled neurons of each block
}


def numpy_stream(purpose: str, seed: int) -> np.random.Generator:
    """The numpy generator of `purpose` for training (or data) seed `seed`."""
    return np.random.default_rng([seed, SALTS[purpose]])


def torch_stream(purpose: str, seed: int):
    """The torch CPU generator of `purpose` for training seed `seed` (deep nets)."""
    import torch

    return torch.Generator().manual_seed(DEEP_OFFSETS[purpose] + seed)
