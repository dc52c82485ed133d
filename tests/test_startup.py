"""Commands import only what they use: no torch where no metric needs autograd (the toy nets train and measure in
numpy and numba; diag_sgd's and relu_two_layer's sharpness needs torch.func), numba only to train, matplotlib only
to draw."""
import json
import subprocess
import sys

import pytest

CHECK = """
import json, sys
from largestep import experiments
{body}
print(json.dumps({{m: m in sys.modules for m in ("torch", "matplotlib", "numba")}}))
"""


def _loaded(body: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHECK.format(body=body)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_listing_the_experiments_imports_neither_torch_nor_matplotlib():
    assert _loaded("for name in experiments.available(): experiments.get(name).title") == \
        {"torch": False, "matplotlib": False, "numba": False}


@pytest.mark.parametrize("name", ["diag_gd", "stabilization_1d", "relu_two_layer", "relu_1d", "relu_multi_layer"])
def test_toy_experiments_run_without_torch_and_draw_with_matplotlib(name):
    run = (f"import dataclasses\nexp = experiments.get({name!r})\n"
           "config = exp.config.quick()\n"
           "if getattr(config, 'sharpness_points', 0):\n"  # the optional sharpness metric needs torch.func
           "    config = dataclasses.replace(config, sharpness_points=0)\n"
           f"results = experiments.run_experiment(exp, config, n_seeds=1, progress=False)\n")
    loaded = _loaded(run)
    assert loaded["torch"] is False and loaded["matplotlib"] is False
    assert loaded["numba"] is (name != "stabilization_1d")  # the trainers' compiled loops
    assert _loaded(run + "exp.figures(results)")["matplotlib"]
