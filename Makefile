# Two commands do all set-up on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SEEDS ?= 5

.PHONY: reproduce test notebooks benchmark deep-demo clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

reproduce: $(VENV)/.installed  ## rebuild every figure and results file in images/, and README's table from them
	$(PY) -m largestep reproduce --seeds $(SEEDS) --out images
	$(PY) -m largestep table --write README.md

test: $(VENV)/.installed  ## unit tests, quick reproduce of every experiment, notebooks in quick mode
	$(PY) -m pytest -q

notebooks: $(VENV)/.installed  ## re-execute every notebook in place at full scale
	$(PY) -m largestep.notebooks *.ipynb deep_nets/plot_feature_sparsity.ipynb

benchmark: $(VENV)/.installed  ## speed measurements (ratios and splits; minutes)
	$(PY) benchmarks/bench_experiments.py
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_diag.py
	$(PY) benchmarks/bench_valley.py
	$(PY) benchmarks/bench_relu.py
	$(PY) benchmarks/bench_rank.py
	$(PY) benchmarks/bench_deep.py

clean-venv:
	rm -rf $(VENV)

deep-demo: $(VENV)/.installed  ## deep_nets: the mnist1d study through train.py (images/deep_mnist1d.*; runs under runs/deep_mnist1d)
	$(PY) -m largestep reproduce deep_mnist1d --seeds 4 --out images
	$(PY) -m largestep table --write README.md
