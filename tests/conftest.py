"""Fixtures shared by the test files: every toy experiment's quick `reproduce`, run once per test session."""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import pytest

TOY = ("stabilization_1d", "loss_surface", "diag_sgd", "diag_gd", "relu_1d", "relu_1d_overreg", "relu_two_layer",
       "relu_multi_layer", "relu_two_layer_draws", "relu_multi_layer_draws", "phase_diag", "phase_relu")


@pytest.fixture(scope="session")
def quick_reproduce(tmp_path_factory):
    """(directory, {experiment: what reproduce printed for it}): `reproduce --quick --seeds 2` of every toy
    experiment, as a user would run it, once for every test that reads its files."""
    from largestep.__main__ import main

    out = tmp_path_factory.mktemp("quick")
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
