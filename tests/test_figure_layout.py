"""Every figure's texts, as drawn into its files: inside the figure, and no two of them overlapping.

Drawn from the committed results files (the figures' contents, not the committed images), through
save_formats, the path `reproduce` and `draw` take; the texts are taken from what the renderer draws.
"""
import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from matplotlib.backends.backend_agg import RendererAgg  # noqa: E402

from largestep.experiments import figures_for  # noqa: E402
from largestep.plotting import save_formats  # noqa: E402
from largestep.results import load_results  # noqa: E402

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "images").glob("*.json"))


def _drawn_texts(fig, monkeypatch, tmp_path):
    """(text, window extent) of every text the PNG's Agg draw renders."""
    drawn = []
    draw_text = RendererAgg.draw_text

    def recording(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        if mtext is not None and s.strip():
            drawn.append((s, mtext.get_window_extent(self)))
        return draw_text(self, gc, x, y, s, prop, angle, ismath, mtext)

    with monkeypatch.context() as patch:
        patch.setattr(RendererAgg, "draw_text", recording)
        save_formats(fig, tmp_path / "figure", formats=("png",))
    return drawn


def _overlap(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


@pytest.mark.parametrize("path", RESULTS, ids=[p.stem for p in RESULTS])
def test_texts_lie_inside_the_figure_and_apart(path, monkeypatch, tmp_path):
    results = load_results(path)
    results["quick"] = True  # the title's extra line, the most text a figure carries (one figure per file: the time)
    for stem, fig in figures_for(results)(results).items():
        texts = _drawn_texts(fig, monkeypatch, tmp_path)
        width, height = fig.canvas.get_width_height()
        assert len(texts) > 5, stem
        for text, box in texts:
            assert box.x0 >= -0.5 and box.y0 >= -0.5 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, \
                f"{stem}: {text!r} at {box.bounds} leaves the {width}x{height} figure"
        for (text_a, a), (text_b, b) in itertools.combinations(texts, 2):
            assert _overlap(a, b) <= 1.0, f"{stem}: {text_a!r} {a.bounds} overlaps {text_b!r} {b.bounds}"
        plt.close(fig)
