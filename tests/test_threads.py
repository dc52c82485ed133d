"""BLAS threads are limited where the work runs, whatever was imported first."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import json, sys
import matplotlib.pyplot  # as the notebooks do: numpy loads before largestep
import numpy
from threadpoolctl import threadpool_info
import largestep
from largestep import metrics
from largestep.experiments import get, run_experiment

def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

seen = []
rank = metrics.rank_from_jacobian
def recording(*args, **kwargs):
    seen.append(blas_threads())
    return rank(*args, **kwargs)
metrics.rank_from_jacobian = recording
import dataclasses
exp = get("relu_multi_layer")  # the metrics are many small LAPACK calls: where BLAS threads matter
run_experiment(exp, dataclasses.replace(exp.config, iterations=200, grid_early=5, grid_spaced=5), n_seeds=1,
               progress=False)
print(json.dumps({"outside": blas_threads(), "inside": seen[0], "calls": len(seen)}))
"""


@pytest.mark.slow
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS runs one thread anyway")
@pytest.mark.parametrize("threads_env,expected", [(None, 1), ("2", 2)])
def test_the_limit_holds_in_the_metrics_when_numpy_loaded_first(threads_env, expected):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "LARGESTEP_THREADS"}
    if threads_env:
        env["LARGESTEP_THREADS"] = threads_env
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    import json

    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["calls"] > 0
    assert seen["inside"] == [expected]  # in the metrics, whatever numpy's own default
    assert seen["outside"] == [min(os.cpu_count(), seen["outside"][0])] and seen["outside"][0] > 1  # untouched


def test_thread_count_reads_the_environment(monkeypatch):
    from largestep.threads import THREADS_ENV, thread_count

    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert thread_count() == 1
    monkeypatch.setenv(THREADS_ENV, "3")
    assert thread_count() == 3
    monkeypatch.setenv(THREADS_ENV, "zero")
    assert thread_count() == 1
