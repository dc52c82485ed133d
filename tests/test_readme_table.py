"""README's generated blocks are printed from the committed results files: they cannot disagree with them."""
from pathlib import Path

import records
from largestep import readme

ROOT = Path(__file__).resolve().parents[1]


def test_readme_blocks_equal_the_ones_printed_from_images():
    texts = {name: (ROOT / name).read_text() for name in ("README.md", "docs/results.md")}
    blocks = readme.blocks(ROOT / "images")
    assert sorted(name for text in texts.values() for name in readme.held(text)) == sorted(blocks)
    for file, text in texts.items():
        for name in readme.held(text):
            assert readme.block_in(text, name) == blocks[name], (
                f"{file}'s {name} differ from the results files: run "
                "`python -m largestep table --write README.md docs/results.md`")


def test_headline_takes_medians_per_run_and_counts_divergence_with_its_interval():
    record = records.results(
        records.run("gd_small", [0.1682], "test_loss", deterministic=True, l0_norm=[100.0]),
        records.run("sgd", [0.000644, *[None] * 5, 0.000644, 0.000644, 0.000644, 0.000644], "test_loss",
                    l0_norm=[46.0] * 10),
        name="diag_gd")
    assert readme.headline(record) == ("test loss 0.168 / 6.4e-4; ℓ0 of β 100 / 46; "
                                       "diverged per run: 5 of 10 diverged (95% CI 24–76%)")


def test_blocks_replace_only_between_their_markers():
    begin, end = readme.MARKERS["table"]
    text = readme.replace_blocks(f"a\n{begin}\nold\n{end}\nb", {"table": "new"})
    assert text == f"a\n{begin}\nnew\n{end}\nb"
