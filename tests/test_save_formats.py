import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from largestep.plotting import save_formats  # noqa: E402


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
