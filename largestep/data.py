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


def relu_1d_points(offset: float = 0.345) -> Regression:
    """The 1-D regression's 12 points: x_k = (k - 5.5)/4 + 0.07, y = 0.345 + [-2, 1.5, 0, 0, 2, 1, 0, -1, 0, 1, 2, -1].

    Train set = test set (x as an (12, 1) column).
    """
    x = ((np.arange(12) - 5.5) / 4 + 0.07)[:, None]
    y = offset + np.array([-2, 1.5, 0, 0, 2, 1, 0, -1, 0, 1, 2, -1], dtype=np.float64)
    return Regression(x, y, x, y)


def unit_sphere(rng, n: int, d: int) -> np.ndarray:
    """n points N(0, I_d) scaled to unit l2 norm."""
    x = rng.standard_normal((n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def teacher_student(n: int, n_test: int, d: int, make_teacher, seed: int = 0) -> Regression:
    """Inputs on the unit sphere labelled by a random teacher: make_teacher(rng) -> (label function, teacher).

    One generator (numpy default_rng(seed)) draws, in order: the teacher, the n train inputs, the
    n_test test inputs.  extras["teacher"] holds what make_teacher returned as the teacher.
    """
    rng = np.random.default_rng(seed)
    label, teacher = make_teacher(rng)
    x, x_test = unit_sphere(rng, n, d), unit_sphere(rng, n_test, d)
    return Regression(x, label(x), x_test, label(x_test), {"teacher": teacher})
