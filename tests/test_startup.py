"""Commands import only what they use: no torch where no metric needs autograd (the toy nets train and measure in
numpy and numba; diag_sgd's and relu_two_layer's sharpness needs torch.func), numba only to train, matplotlib only
to draw."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

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


NUMBA_AFTER_THE_LOOPS = """
import json, sys
import numpy as np
before = {m for m in ("scipy.linalg", "cffi") if m in sys.modules}
from largestep import kernels
u, v = np.ones((2, 3)), np.zeros((2, 3))
kernels.diag_gd_steps(u, v, np.ones((4, 3)), np.full((3, 4), 0.25), np.ones(4), np.full((2, 5), 0.1))
loaded = {m: m in sys.modules for m in ("scipy.linalg", "cffi", "pycparser")}
import numba
@numba.njit
def uses_blas(a, b):
    return np.dot(a, b), np.convolve(a, b)
dot, conv = uses_blas(np.ones(3), np.ones(3))
print(json.dumps({"before": sorted(before), "loaded": loaded, "dot": dot, "convolve": conv.tolist()}))
"""


def test_the_compiled_loops_load_neither_scipy_linalg_nor_cffi_and_numba_keeps_working():
    """numba's first call would import scipy.linalg and cffi (0.3-0.4 s) where installed; the loops need neither.
    Held back only while numba loads its registries: afterwards both import, and numba's np.dot still compiles."""
    pytest.importorskip("scipy.linalg")  # installed with the dev extras (mnist1d): without it there is nothing to hold
    out = subprocess.run([sys.executable, "-c", NUMBA_AFTER_THE_LOOPS], capture_output=True, text=True, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["before"] == []
    assert found["loaded"] == {"scipy.linalg": False, "cffi": False, "pycparser": False}
    assert found["dot"] == 3.0 and found["convolve"] == [1.0, 2.0, 3.0, 2.0, 1.0]
