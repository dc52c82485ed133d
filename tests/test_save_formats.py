import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import warnings  # noqa: E402

from largestep.plotting import nan_percentiles, save_formats  # noqa: E402


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


def test_each_format_is_written_and_files_are_reproducible(tmp_path):
    written = save_formats(_figure(), tmp_path / "first")
    assert written == [tmp_path / "first.png", tmp_path / "first.pdf"]
    assert (tmp_path / "first.png").read_bytes().startswith(b"\x89PNG")
    assert (tmp_path / "first.pdf").read_bytes().startswith(b"%PDF")
    save_formats(_figure(), tmp_path / "again")  # the same figure drawn again: the same bytes (no creation date
    for ext in ("png", "pdf"):  # in the PDF), so that redrawn images leave git quiet
        assert (tmp_path / f"again.{ext}").read_bytes() == (tmp_path / f"first.{ext}").read_bytes(), ext
    plt.close("all")


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
