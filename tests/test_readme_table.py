"""README's table of figures is printed from the committed results files: it cannot disagree with them."""
from pathlib import Path

from largestep import readme_table

ROOT = Path(__file__).resolve().parents[1]


def test_readme_table_equals_the_one_printed_from_images():
    readme = (ROOT / "README.md").read_text()
    assert readme_table.block_in(readme) == readme_table.table(ROOT / "images"), \
        "README's table differs from the results files: run `python -m largestep table --write README.md`"


def test_headline_takes_medians_per_run_and_counts_divergence():
    record = {"experiment": "diag_gd", "runs": [
        {"label": "GD", "deterministic": True, "seeds_tried": 1, "seeds_diverged": 0,
         "final_median": {"test_loss": 0.1682, "l0_norm": 100.0}},
        {"label": "SGD", "deterministic": False, "seeds_tried": 10, "seeds_diverged": 5,
         "final_median": {"test_loss": 0.000644, "l0_norm": 46.0}},
    ]}
    assert readme_table.headline(record) == ("test loss 0.168 / 6.4e-4; ℓ0 of β 100 / 46; "
                                             "seeds diverged per run: 5 of 10")
    text = readme_table.replace_in(f"a\n{readme_table.BEGIN}\nold\n{readme_table.END}\nb", "new")
    assert text == f"a\n{readme_table.BEGIN}\nnew\n{readme_table.END}\nb"
