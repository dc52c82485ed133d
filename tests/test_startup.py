"""Commands import only what they use: no torch for the numpy-only experiments, matplotlib only to draw."""
import json
import subprocess
import sys

import pytest

CHECK = """
import json, sys
from largestep import experiments
{body}
print(json.dumps({{m: m in sys.modules for m in ("torch", "matplotlib")}}))
"""


def _loaded(body: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK.format(body=body)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_listing_the_experiments_imports_neither_torch_nor_matplotlib():
    assert _loaded("for name in experiments.available(): experiments.get(name).title") == \
        {"torch": False, "matplotlib": False}


@pytest.mark.parametrize("name", ["diag_gd", "stabilization_1d"])  # diag_sgd: its sharpness needs torch.func
def test_numpy_experiments_run_without_torch_and_draw_with_matplotlib(name):
    run = (f"exp = experiments.get({name!r})\n"
           f"results = experiments.run_experiment(exp, exp.config.quick(), n_seeds=1, progress=False)\n")
    assert _loaded(run) == {"torch": False, "matplotlib": False}
    assert _loaded(run + "exp.figures(results)")["matplotlib"]
