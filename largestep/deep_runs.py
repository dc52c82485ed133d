"""Moved to deep_nets/runs.py, the one home of a deep run's name, identity, grid and files; these names stay
importable from here for code written against them (deep_nets/plot_feature_sparsity.ipynb among it)."""
from deep_nets.runs import METRICS, DeepRun, RunDirError, collect_runs, read_run, run_label, run_spec  # noqa: F401
