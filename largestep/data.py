"""Data sets of the toy experiments, each built from one fixed data seed."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Regression:
    """A regression data set: train and test inputs and labels (float64 numpy arrays)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    extras: dict | None = None  # what made the data, e.g. the ground truth beta_star


def sparse_regression(n: int, d: int, r: int, n_test: int = 1000, seed: int = 0) -> Regression:
    """Noiseless sparse regression y = X beta*, with the paper's exact random stream.

    legacy RandomState(seed): X (n x d) then X_test (n_test x d) from multivariate_normal(0, I),
    then d standard normals whose first r (absolute values) form beta*, scaled to unit l2 norm.
    """
    rs = np.random.RandomState(seed)
    x = rs.multivariate_normal(np.zeros(d), np.eye(d), n)
    x_test = rs.multivariate_normal(np.zeros(d), np.eye(d), n_test)
    beta_star = rs.randn(d)
    beta_star[r:] = 0.0
    beta_star = np.abs(beta_star)
    beta_star /= np.linalg.norm(beta_star)
    return Regression(x, x @ beta_star, x_test, x_test @ beta_star, {"beta_star": beta_star})
