import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import warnings  # noqa: E402

from largestep.plotting import minor_ticks_as_marks, nan_percentiles, save_formats  # noqa: E402


def _figure():
    fig, axes = plt.subplots(1, 2, figsize=(6, 2.5), layout="constrained")
    x = np.arange(1, 200)
    axes[0].plot(x, 1 / x)
    axes[0].set_yscale("log")
    axes[1].fill_between(x, np.sin(x / 9), np.cos(x / 9), alpha=0.3)
    fig.suptitle("a title with $\\ell_0$")
    fig.legend(["a", "b"], loc="outside lower center")
    return fig


def test_png_is_byte_for_byte_what_savefig_writes_and_pdf_is_written(tmp_path):
    fig = _figure()
    fig.savefig(tmp_path / "reference.png")
    plt.close(fig)
    fig = _figure()
    written = save_formats(fig, tmp_path / "fast")
    assert written == [tmp_path / "fast.png", tmp_path / "fast.pdf"]
    assert (tmp_path / "fast.png").read_bytes() == (tmp_path / "reference.png").read_bytes()
    assert (tmp_path / "fast.pdf").read_bytes().startswith(b"%PDF")
    assert fig.get_layout_engine() is not None  # the figure keeps its layout engine afterwards
    plt.close(fig)


def test_nan_percentiles_equal_numpys_nanpercentile_value_for_value():
    rng = np.random.default_rng(1)
    for trial in range(200):
        seeds, points = rng.integers(1, 8), rng.integers(1, 60)
        values = rng.standard_normal((seeds, points)) * 10.0 ** rng.integers(-5, 5, (seeds, points))
        values[rng.random(values.shape) < 0.6 * rng.random()] = np.nan
        values[rng.random(values.shape) < 0.05] = np.inf
        values[:, 0] = np.nan  # an all-NaN column: NaN, as numpy's
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanpercentile(values, [25, 75], axis=0)
            got = nan_percentiles(values, [25, 75])
        assert np.array_equal(got, want, equal_nan=True), trial


def test_minor_ticks_drawn_as_marks_give_the_same_pixels_and_the_axes_come_back():
    fig = _figure()
    fig.canvas.draw()
    fig.canvas.draw()  # the layout settles over two draws: compare like with like
    reference = np.asarray(fig.canvas.buffer_rgba()).copy()
    plt.close(fig)
    fig = _figure()
    log_axis = fig.axes[0].yaxis
    locator = log_axis.get_minor_locator()
    with minor_ticks_as_marks(fig) as place_marks:
        fig.canvas.draw()  # laid out with the minor ticks off
        place_marks()
        assert len(fig.axes[0].lines) == 2  # the curve and one line of marks for the log axis' minor ticks
        fig.canvas.draw()
        assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), reference)
    assert log_axis.get_minor_locator() is locator and len(fig.axes[0].lines) == 1
    plt.close(fig)
