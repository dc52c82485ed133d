"""The teacher-student data sets equal what the paper's procedure draws, written here independently with the
global numpy and torch streams, as the paper's code does it."""
import numpy as np
import pytest
import torch

from largestep import data
from largestep.data import paper_teacher_student, teacher_student


# The draws' float32 sums (unit-norm rows, the teacher's outputs) are vectorized by torch for the CPU it runs on,
# so their last bits depend on the machine: the stored draws differ from a fresh draw on an AVX2 machine (AMD EPYC)
# by up to 3e-7 (2 units in the last place of the inputs), on values of order 1.  A wrong draw differs by order 1.
FLOAT32_SUMS = 2e-6


def _papers_procedure(seed, d, n, widths, biases):
    np.random.seed(seed + 1)
    torch.manual_seed(seed + 1)
    x = torch.tensor(np.random.multivariate_normal(np.zeros(d), np.eye(d), n)).float()
    x = x / (x ** 2).sum(1, keepdim=True).sqrt()
    x_test = torch.tensor(np.random.multivariate_normal(np.zeros(d), np.eye(d), 1000)).float()
    x_test = x_test / (x_test ** 2).sum(1, keepdim=True).sqrt()
    sizes = [d, *widths, 1]
    net = torch.nn.Sequential()
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            net.append(torch.nn.ReLU())
        net.append(torch.nn.Linear(a, b, bias=biases))
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for layer in linears:
        layer.weight.data = torch.randn_like(layer.weight)
    if len(linears) == 2:
        first, out = linears
        first.weight.data = first.weight.data / (first.weight.data ** 2).sum(1, keepdim=True).sqrt()
        out.weight.data = torch.sign(out.weight.data)
    with torch.no_grad():
        return x.numpy(), net(x).numpy(), x_test.numpy(), net(x_test).numpy(), linears


@pytest.mark.parametrize("name, seed, d, n, widths, biases", [
    ("two_layer", 0, 2, 15, (3,), False),
    ("multi_layer", 5, 5, 50, (2, 2), True),
])
def test_paper_teacher_student_is_the_papers_draw(name, seed, d, n, widths, biases):
    state = np.random.get_state(), torch.get_rng_state()
    ours = paper_teacher_student(name)
    # the package leaves the caller's global streams alone
    assert np.array_equal(np.random.get_state()[1], state[0][1]) and torch.equal(torch.get_rng_state(), state[1])
    *expected, linears = _papers_procedure(seed, d, n, widths, biases)
    assert [a.dtype for a in ours] == [np.float32] * 4
    assert [a.shape for a in ours] == [(n, d), (n, 1), (1000, d), (1000, 1)]
    for a, b in zip(ours, expected):  # stored draws, made on another machine: see FLOAT32_SUMS
        np.testing.assert_allclose(a, b, rtol=0, atol=FLOAT32_SUMS)
    if name == "two_layer":  # the paper's teacher: output weights (-1, -1, +1); its code prints these labels
        np.testing.assert_array_equal(linears[1].weight.detach().numpy(), [[-1.0, -1.0, 1.0]])
        np.testing.assert_allclose(ours[1][:4, 0], [0.9664, -0.5862, 0.4440, 0.9520], atol=5e-5)
    # another data seed draws other data the same way
    other = paper_teacher_student(name, data_seed=seed + 1)
    for a, b in zip(other, _papers_procedure(seed + 1, d, n, widths, biases)[:4]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(other[0], ours[0])


def test_training_data_is_the_float64_copy_with_the_teacher():
    x, y, x_test, y_test = paper_teacher_student("multi_layer")
    data = teacher_student(50, 1000, 5, (2, 2), True, 5)
    assert data.x_train.dtype == np.float64 and data.y_train.shape == (50,)
    np.testing.assert_array_equal(data.x_train, x.astype(np.float64))
    np.testing.assert_array_equal(data.y_test, y_test[:, 0].astype(np.float64))
    teacher = data.extras["teacher"]
    assert [w.shape for w, _ in teacher] == [(2, 5), (2, 2), (1, 2)] and all(b is not None for _, b in teacher)
    with pytest.raises(ValueError, match="unknown teacher-student data"):
        paper_teacher_student("three_layer")


def test_stored_paper_draws_equal_a_fresh_draw_with_torch():
    """The paper's data sets are read from largestep/paper_teacher_student.npz (no torch import); each must equal
    what torch draws now, teacher included.  If this fails, torch's stream changed: see `python -m largestep.data`."""
    for d, n, widths, biases, seed in data.PAPER_TEACHERS.values():
        assert f"{data._draw_key(n, 1000, d, widths, biases, seed)}/x" in data._stored_draws()
        stored = data.teacher_student_draw(n, 1000, d, widths, biases, seed)
        fresh = data.draw_with_torch(n, 1000, d, widths, biases, seed)
        for a, b in zip(stored[:4], fresh[:4]):
            assert a.dtype == b.dtype == np.float32
            np.testing.assert_allclose(a, b, rtol=0, atol=FLOAT32_SUMS)
        for (w, b), (w_fresh, b_fresh) in zip(stored[4], fresh[4]):  # drawn, not summed: equal on any machine
            np.testing.assert_array_equal(w, w_fresh)
            assert (b is None and b_fresh is None) or np.array_equal(b, b_fresh)
        assert len(stored[4]) == len(fresh[4]) == len(widths) + 1
        for (w, bias), (w_fresh, bias_fresh) in zip(stored[4], fresh[4]):
            np.testing.assert_array_equal(w, w_fresh)
            assert (bias is None) == (bias_fresh is None) == (not biases)
            if biases:
                np.testing.assert_array_equal(bias, bias_fresh)
    # a draw the file does not hold is drawn
    assert not np.array_equal(data.teacher_student_draw(15, 1000, 2, (3,), False, 1)[0],
                              data.teacher_student_draw(15, 1000, 2, (3,), False, 0)[0])
