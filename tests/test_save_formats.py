import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import warnings  # noqa: E402

from largestep.plotting import (nan_percentiles, plain_text, plain_text_numbers, save_formats,  # noqa: E402
                                ticks_as_artists)


def _figure():
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.5), layout="constrained")
    x = np.arange(1, 200)
    axes[0].plot(x, 1 / x)
    axes[0].set_yscale("log")  # unlabelled minor ticks
    axes[0].set_xlabel("iteration")
    axes[0].grid(True)  # solid gridlines: drawn as one line
    axes[1].fill_between(x, np.sin(x / 9), np.cos(x / 9), alpha=0.3)
    axes[1].set_ylabel("value")
    axes[1].yaxis.tick_right()
    axes[1].yaxis.set_label_position("right")
    axes[1].grid(True, which="major", linestyle="--")  # dashed gridlines: drawn one by one
    mesh = axes[2].pcolormesh(np.exp(np.linspace(0, 3, 20)).reshape(4, 5), norm=matplotlib.colors.LogNorm())
    fig.colorbar(mesh, ax=axes[2], label="loss")
    axes[2].set_ylim(0.5, 3.5)
    axes[2].semilogx()  # a log axis of under two decades: labelled minor ticks
    axes[2].set_xlim(1.5, 4.8)
    fig.suptitle("a title with $\\ell_0$")
    fig.legend(["a", "b"], loc="outside lower center")
    return fig


def test_png_is_byte_for_byte_what_savefig_writes_with_plain_text_numbers_and_pdf_is_written(tmp_path):
    fig = _figure()
    with plain_text_numbers(fig):
        fig.savefig(tmp_path / "reference.png")
    plt.close(fig)
    fig = _figure()
    engine = fig.get_layout_engine()
    written = save_formats(fig, tmp_path / "fast")
    assert written == [tmp_path / "fast.png", tmp_path / "fast.pdf"]
    assert (tmp_path / "fast.png").read_bytes() == (tmp_path / "reference.png").read_bytes()
    assert (tmp_path / "fast.pdf").read_bytes().startswith(b"%PDF")
    assert fig.get_layout_engine() is engine  # the figure keeps its layout engine afterwards
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


def test_ticks_drawn_as_artists_give_the_same_pixels_and_the_axes_come_back():
    fig = _figure()
    fig.canvas.draw()
    fig.set_layout_engine("none")  # the layout is final: the ticks follow the axes' lengths
    fig.canvas.draw()
    reference = np.asarray(fig.canvas.buffer_rgba()).copy()
    axes = fig.axes
    state = [(axis.get_major_locator(), axis.get_minor_locator(), axis.label.get_visible(), len(ax.get_children()))
             for ax in axes for axis in (ax.xaxis, ax.yaxis)]
    with ticks_as_artists(fig):
        for ax in axes:
            for axis in (ax.xaxis, ax.yaxis):  # nothing left for the axes to recompute or measure
                assert isinstance(axis.get_major_locator(), matplotlib.ticker.NullLocator)
        # one line of marks for the log axis' dozens of minor ticks, not a Tick (five artists) each
        marks = [a for a in axes[0].get_children() if isinstance(a, matplotlib.lines.Line2D)
                 and len(a.get_xdata()) > 20]
        assert marks
        fig.canvas.draw()
        assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), reference)
    assert state == [(axis.get_major_locator(), axis.get_minor_locator(), axis.label.get_visible(),
                      len(ax.get_children())) for ax in axes for axis in (ax.xaxis, ax.yaxis)]
    fig.canvas.draw()
    assert np.array_equal(np.asarray(fig.canvas.buffer_rgba()), reference)
    plt.close(fig)


def _value(text: str) -> float:
    """The number a plain-text label says: '−6×10⁻¹', '10³', '0.5'."""
    import re

    match = re.fullmatch(r"(−?)(?:([0-9.]+)×)?10([⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+)", text)
    if match is None:
        return float(text.replace("−", "-"))
    exponent = int(match[3].translate(str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")))
    return (-1.0 if match[1] else 1.0) * float(match[2] or 1) * 10.0 ** exponent


@pytest.mark.parametrize("value", [1e-12, 1e-5, 0.1, 1.0, 10.0, 1e3, 6e-1, 2e-5, 3e4, -1e-3, 0.5, 20.0])
def test_plain_text_writes_the_number_matplotlibs_log_labels_say(value):
    label = matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False)(value)
    assert label.startswith("$")  # a mathtext label ...
    text = plain_text(label)
    assert "$" not in text and "\\" not in text  # ... becomes plain text that says the same number
    assert _value(text) == pytest.approx(value, rel=1e-12), (label, text)


def test_plain_text_leaves_other_labels_alone():
    for label in ["$x^2$", "$\\ell_0$", "iteration", "", "$\\mathdefault{10^{x}}$", "$\\mathdefault{\\times}$"]:
        assert plain_text(label) == label
