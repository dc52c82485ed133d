"""Fixtures shared by the test files: every toy experiment's quick `reproduce`, run once per test run (with
pytest-xdist's workers, by the first worker that asks, the others waiting on a file lock and reading its files)."""
from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path

import pytest
from filelock import FileLock  # torch's own dependency

TOY = ("stabilization_1d", "loss_surface", "diag_sgd", "diag_gd", "relu_1d", "relu_1d_overreg", "relu_two_layer",
       "relu_multi_layer", "relu_two_layer_draws", "relu_multi_layer_draws", "phase_diag", "phase_relu")


@pytest.fixture(scope="session")
def quick_reproduce(tmp_path_factory):
    """(directory, {experiment: what reproduce printed for it}): `reproduce --quick --seeds 2` of every toy
    experiment, as a user would run it, once for every test that reads its files."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return _reproduce_quick(tmp_path_factory.mktemp("quick"))
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every worker of this run
    with FileLock(str(shared / "quick.lock")):
        done = shared / "quick-printed.json"  # beside the results, not among them
        if not done.is_file():
            out, printed = _reproduce_quick(shared / "quick")
            done.write_text(json.dumps(printed))
        return shared / "quick", json.loads(done.read_text())


def _reproduce_quick(out: Path):
    from largestep.__main__ import main

    out.mkdir(parents=True, exist_ok=True)
    printed = {}
    cwd = os.getcwd()
    os.chdir(out)  # whatever an experiment keeps beside its results stays in the test's directory
    try:
        for name in TOY:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = main(["reproduce", name, "--quick", "--seeds", "2", "--out", str(out), "--no-progress"])
            assert code == 0, buffer.getvalue()
            printed[name] = buffer.getvalue()
    finally:
        os.chdir(cwd)
    return Path(out), printed


# The fast tier (`make test-fast`, the edit loop) leaves out the tests marked slow where they are written (whole
# files that launch processes, execute notebooks or redraw every committed figure carry `pytestmark`) and every
# test that reads the quick reproduce of all toy experiments (about a minute to make).
def pytest_collection_modifyitems(config, items):
    for item in items:
        if "quick_reproduce" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)
