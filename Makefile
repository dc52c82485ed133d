# Two commands do all set-up on a fresh machine: `make reproduce` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: reproduce figures test test-fast notebooks benchmark deep-demo deep-figures clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

reproduce: $(VENV)/.installed  ## rerun every toy experiment into runs/reproduce (git-ignored), then compare with images/
	$(PY) -m largestep reproduce --out runs/reproduce
	$(PY) -m largestep compare runs/reproduce images

figures: $(VENV)/.installed  ## rewrite the committed images/ and README's generated blocks, on purpose
	$(PY) -m largestep reproduce --out images
	$(PY) -m largestep table --write README.md docs/results.md

test: $(VENV)/.installed  ## the full suite, as CI runs it (two worker processes: pytest-xdist)
	$(PY) -m pytest -q -n 2

test-fast: $(VENV)/.installed  ## the fast tier, for the edit loop: the tests not marked slow (41 s here)
	$(PY) -m pytest -q -n 2 -m "not slow"

notebooks: $(VENV)/.installed  ## re-execute every notebook in place at full scale
	$(PY) -m largestep.notebooks --save *.ipynb deep_nets/plot_feature_sparsity.ipynb

benchmark: $(VENV)/.installed  ## speed measurements (ratios and splits; minutes)
	$(PY) benchmarks/bench_experiments.py
	$(PY) benchmarks/bench_startup.py
	$(PY) benchmarks/bench_diag.py
	$(PY) benchmarks/bench_valley.py
	$(PY) benchmarks/bench_relu.py
	$(PY) benchmarks/bench_rank.py
	$(PY) benchmarks/bench_deep.py

deep-demo: $(VENV)/.installed  ## deep_nets: the MNIST-1D study through train.py into runs/reproduce, compared with images/
	$(PY) -m largestep reproduce deep_mnist1d --out runs/reproduce
	$(PY) -m largestep compare runs/reproduce images

deep-figures: $(VENV)/.installed  ## rewrite images/deep_mnist1d.* and README's blocks, on purpose
	$(PY) -m largestep reproduce deep_mnist1d --out images
	$(PY) -m largestep table --write README.md docs/results.md

clean-venv:
	rm -rf $(VENV)
