"""Every notebook runs top to bottom in quick mode (LARGESTEP_QUICK=1), without changing the file, and shows
every figure it makes; our figures leave the user's own plotting in Jupyter working."""
import json
from pathlib import Path

import nbformat
import pytest

from largestep.notebooks import execute

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("*.ipynb")) + sorted((ROOT / "deep_nets").glob("*.ipynb"))

# Kernel-side bookkeeping, without importing pyplot (that would set up the backend before the notebook
# does and hide the bug this guards against): count the pyplot figures each cell creates.
COUNT_FIGURES = '''
from matplotlib._pylab_helpers import Gcf as _Gcf
_figures_made, _in_cell, _new_manager = {}, [0], _Gcf._set_new_active_manager.__func__
def _counting(cls, manager):
    _in_cell[0] += 1
    return _new_manager(cls, manager)
def _record(result):
    if _in_cell[0]:
        _figures_made[result.execution_count] = _in_cell[0]
    _in_cell[0] = 0
_Gcf._set_new_active_manager = classmethod(_counting)
get_ipython().events.register("post_run_cell", _record)
'''
REPORT_FIGURES = "import json; print(json.dumps(_figures_made))"


def _has_image(cell) -> bool:
    return any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))


def test_the_paper_notebooks_are_all_here():
    names = {p.name for p in NOTEBOOKS}
    for expected in ["diag_nets.ipynb", "diag_nets_2d_loss_surface.ipynb", "fc_nets_1d_regression.ipynb",
                     "fc_nets_two_layer.ipynb", "fc_nets_multi_layer.ipynb"]:
        assert expected in names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode_and_shows_every_figure(path):
    before = path.read_bytes()
    nb = nbformat.read(path, as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(COUNT_FIGURES), *nb.cells, nbformat.v4.new_code_cell(REPORT_FIGURES)]
    nb = execute(path, quick=True, save=False, timeout=600, nb=nb)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else None
    assert path.read_bytes() == before
    made = {int(k): n for k, n in json.loads(nb.cells[-1].outputs[0]["text"]).items()}
    figure_cells = [c for c in nb.cells[1:-1] if c.cell_type == "code" and made.get(c.execution_count)]
    assert figure_cells, "every notebook draws figures; none was counted"
    blank = [c.source.splitlines()[0] for c in figure_cells if not _has_image(c)]
    assert not blank, f"cells that make a figure but show none: {blank}"


def test_the_users_own_figure_still_shows_after_ours_and_no_style_leaks(tmp_path):
    cells = [
        "import matplotlib\nDEFAULT_FONT = matplotlib.rcParams['font.size']",
        "from largestep.experiments import get, run_experiment\n"
        "exp = get('stabilization_1d')\n"
        "results = run_experiment(exp, exp.config.quick(), n_seeds=1, progress=False)\n"
        "figs = exp.figures(results)",
        "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([0, 1], [1, 0])\n"
        "print(matplotlib.rcParams['font.size'] == DEFAULT_FONT, matplotlib.rcParams['axes.grid'])",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb = execute(tmp_path / "probe.ipynb", quick=True, save=False, timeout=300, nb=nb)
    ours, users = nb.cells[1], nb.cells[2]
    assert _has_image(ours), "our figure made in a cell is shown"
    assert _has_image(users), "the user's plt.subplots() after ours is shown"
    assert users.outputs[0]["text"].split() == ["True", "False"], "STYLE does not leak into the user's rc"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_full_scale_outputs_and_no_absolute_paths(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code), "commit notebooks executed top to bottom"
    text = path.read_text()
    assert all(root not in text for root in ("/" + "work/", "/tmp/", "/root/"))
    printed = "".join(o.get("text", "") for c in code for o in c.get("outputs", []))
    assert "quick mode" not in printed and "(quick)" not in printed


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_take_their_configs_from_the_registry(path):
    """A notebook that restated a config would drift from what `reproduce` runs: none builds one."""
    import re

    import nbformat

    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    restated = re.findall(r"\b(\w*(?:Config|Run|Schedule|Warmup|RunSpec))\(", code)
    assert not restated, f"{path.name} builds {sorted(set(restated))}: take the config from the registry"
