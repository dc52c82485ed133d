"""No tracked file points outside the repository or at the machine that wrote it."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# assembled, so that this file does not match itself
FORBIDDEN = ["/" + "work/", "../" + "shared", "spec" + ".md", "the " + "spec ", "the " + "spec's",
             "design " + "sketch", "issue's " + "target"]


def test_no_tracked_text_file_cites_outside_paths_or_developer_notes():
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True)
    found = []
    for name in filter(None, files.stdout.split("\0")):
        path = ROOT / name
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # images and other binaries
        lowered = text.lower()
        found += [f"{name}: {word!r}" for word in FORBIDDEN if word.lower() in lowered]
    assert files.stdout and not found, found
