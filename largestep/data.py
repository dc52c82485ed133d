"""Data sets of the toy experiments, each built from one fixed data seed."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

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


# The paper's teacher-student data sets: (d, n, teacher hidden widths, teacher biases, the paper's data seed).
PAPER_TEACHERS = {
    "two_layer": (2, 15, (3,), False, 0),
    "multi_layer": (5, 50, (2, 2), True, 5),
}


def paper_teacher_student(name: str, data_seed: int | None = None, n_test: int = 1000):
    """The paper's teacher-student data `name` ("two_layer" or "multi_layer"), exactly as its code draws it.

    Returns float32 numpy arrays (X, y, X_test, y_test), y of shape (n, 1).  data_seed defaults to the
    paper's (0 for two_layer, 5 for multi_layer); see `teacher_student_draw` for the procedure.
    """
    if name not in PAPER_TEACHERS:
        raise ValueError(f"unknown teacher-student data {name!r} (known: {', '.join(PAPER_TEACHERS)})")
    d, n, widths, biases, paper_seed = PAPER_TEACHERS[name]
    seed = paper_seed if data_seed is None else data_seed
    return teacher_student_draw(n, n_test, d, widths, biases, seed)[:4]


# The paper's teacher-student draws (PAPER_TEACHERS, n_test = 1000) as `draw_with_torch` makes them, stored by
# `store_paper_draws` (`python -m largestep.data`).  Drawing needs torch's generator, and importing torch takes
# longer (1.1-1.5 s) than a two-layer run without it.  Stored, the paper's data is also the same on every machine
# and under any torch release: torch vectorizes a fresh draw's float32 sums for the CPU at hand, so their last bits
# depend on the machine (on an AVX2 machine the draw differs from the stored one by up to 3e-7).  tests/test_data.py checks the file against a fresh draw.
PAPER_DRAWS = Path(__file__).with_name("paper_teacher_student.npz")


def _draw_key(n, n_test, d, teacher_widths, teacher_biases, seed) -> str:
    widths = "-".join(str(int(w)) for w in teacher_widths)
    return f"n{int(n)}_test{int(n_test)}_d{int(d)}_widths{widths}_biases{int(bool(teacher_biases))}_seed{int(seed)}"


@functools.cache
def _stored_draws() -> dict:
    if not PAPER_DRAWS.is_file():
        return {}
    with np.load(PAPER_DRAWS) as stored:
        return {name: stored[name] for name in stored.files}


def teacher_student_draw(n: int, n_test: int, d: int, teacher_widths, teacher_biases: bool, seed: int):
    """`draw_with_torch`'s arrays: from the stored paper draws when they hold this one, else drawn."""
    key = _draw_key(n, n_test, d, teacher_widths, teacher_biases, seed)
    stored = _stored_draws()
    if f"{key}/x" not in stored:
        return draw_with_torch(n, n_test, d, teacher_widths, teacher_biases, seed)
    arrays = [stored[f"{key}/{part}"].copy() for part in ("x", "y", "x_test", "y_test")]
    teacher = [(stored[f"{key}/weight{l}"].copy(), stored[f"{key}/bias{l}"].copy() if teacher_biases else None)
               for l in range(len(teacher_widths) + 1)]
    return (*arrays, teacher)


def store_paper_draws(path: Path = PAPER_DRAWS) -> Path:
    """Draw each of the paper's teacher-student data sets with torch and store them in `path` (atomically)."""
    from .results import atomic_write

    arrays = {}
    for d, n, widths, biases, seed in PAPER_TEACHERS.values():
        key = _draw_key(n, 1000, d, widths, biases, seed)
        x, y, x_test, y_test, teacher = draw_with_torch(n, 1000, d, widths, biases, seed)
        arrays.update({f"{key}/x": x, f"{key}/y": y, f"{key}/x_test": x_test, f"{key}/y_test": y_test})
        for l, (weight, bias) in enumerate(teacher):
            arrays[f"{key}/weight{l}"] = weight
            if bias is not None:
                arrays[f"{key}/bias{l}"] = bias
    return atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))


def draw_with_torch(n: int, n_test: int, d: int, teacher_widths, teacher_biases: bool, seed: int):
    """Inputs on the unit sphere labelled by a random ReLU teacher, with the paper's random streams.

    numpy's legacy stream seeded seed + 1 (as np.random.seed(seed + 1)) draws X = multivariate_normal(0,
    I_d, n), cast to float32, rows scaled to unit norm, then X_test likewise.  torch's stream seeded
    seed + 1 (as torch.manual_seed(seed + 1)) then builds the teacher as the paper's torch module is built:
    `nn.Linear` layers created in order (their default initialization consumes the stream, biases
    included where the teacher has them), then each weight replaced, in layer order, by
    `torch.randn_like(weight)`.  A teacher with one hidden layer (the two-layer experiment's) then has
    its first-layer rows scaled to unit norm and its output weights replaced by their signs.  Labels are
    the teacher's float32 outputs, y of shape (n, 1).  Neither global random state is touched.

    Returns float32 arrays (X, y, X_test, y_test, teacher), teacher a list of (weight, bias or None).
    """
    import torch

    numpy_stream = np.random.RandomState(seed + 1)

    def unit_rows(w):  # float32, summed as the paper's code sums (the last bits decide edge-of-stability runs)
        return w / torch.sum(w ** 2, 1, keepdim=True) ** 0.5

    def sphere(rows):
        return unit_rows(torch.tensor(numpy_stream.multivariate_normal(np.zeros(d), np.eye(d), rows)).float())

    x, x_test = sphere(n), sphere(n_test)
    sizes = [d, *teacher_widths, 1]
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed + 1)
        layers = [torch.nn.Linear(a, b, bias=teacher_biases) for a, b in zip(sizes[:-1], sizes[1:])]
        for layer in layers:
            layer.weight.copy_(torch.randn_like(layer.weight))
        if len(layers) == 2:
            layers[0].weight.copy_(unit_rows(layers[0].weight))
            layers[1].weight.copy_(torch.sign(layers[1].weight))

        def label(inputs):
            h = inputs
            for layer in layers[:-1]:
                h = torch.relu(layer(h))
            return layers[-1](h).numpy()

        y, y_test = label(x), label(x_test)
        teacher = [(layer.weight.numpy().copy(), None if layer.bias is None else layer.bias.numpy().copy())
                   for layer in layers]
    return x.numpy(), y, x_test.numpy(), y_test, teacher


def teacher_student(n: int, n_test: int, d: int, teacher_widths, teacher_biases: bool, seed: int) -> Regression:
    """`teacher_student_draw` as a float64 Regression for training; extras["teacher"] holds the teacher."""
    x, y, x_test, y_test, teacher = teacher_student_draw(n, n_test, d, teacher_widths, teacher_biases, seed)
    as64 = lambda a: a.astype(np.float64)  # noqa: E731
    return Regression(as64(x), as64(y[:, 0]), as64(x_test), as64(y_test[:, 0]), {"teacher": teacher})


if __name__ == "__main__":
    print(f"wrote {store_paper_draws()}")
