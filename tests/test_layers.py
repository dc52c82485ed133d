"""The package's import graph: no cycles, and no module importing from a layer above its own.

Every `import` statement counts, at module level or inside a function (a lazy import is still a dependency);
a submodule's implicit import of its own package does not.  Layers, from the bottom up:
  0  the foundations: config, stats, streams, schedules, threads, progress, results
  1  the engine: data, metrics, kernels, diag_nets, relu_nets, stabilization, landscape, sharpness, seeds
  2  what reads results: claims, plotting
  3  the experiment families (largestep.experiments.<family>), and the registry they are listed in
  4  what serves users: readme, report, compare, notebooks, __main__
deep_nets (the deep-net trainer) may use layers 0-2; the deep family (layer 3) launches it; its sweep command
(deep_nets.sweep) serves users, at layer 4.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {
    "largestep": 0, "largestep.config": 0, "largestep.stats": 0, "largestep.streams": 0, "largestep.schedules": 0,
    "largestep.threads": 0, "largestep.progress": 0, "largestep.results": 0,
    "largestep.data": 1, "largestep.metrics": 1, "largestep.kernels": 1, "largestep.diag_nets": 1,
    "largestep.relu_nets": 1, "largestep.stabilization": 1, "largestep.landscape": 1, "largestep.sharpness": 1,
    "largestep.seeds": 1,
    "largestep.claims": 2, "largestep.plotting": 2,
    "largestep.experiments": 3,
    "largestep.readme": 4, "largestep.compare": 4, "largestep.report": 4, "largestep.notebooks": 4,
    "largestep.__main__": 4,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """The project modules `path` imports (largestep.*, deep_nets.*), resolved to module names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[: len(base) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module
            found.add(target)
            found |= {f"{target}.{alias.name}" for alias in node.names}  # `from . import relu`
    modules = {module_name(p) for p in sources()}
    return {m for m in found if m in modules and m != name and not name.startswith(m + ".")}


def sources() -> list[Path]:
    return sorted([*(ROOT / "largestep").rglob("*.py"), *(ROOT / "deep_nets").glob("*.py")])


def layer(name: str) -> int:
    if name.startswith("largestep.experiments"):
        return 3
    if name == "deep_nets.sweep":  # the sweep command: it collects results and draws them
        return 4
    if name.startswith("deep_nets"):
        return 2.5  # beside the readers of results: uses the engine, is launched by the deep family
    return LAYERS[name]


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports(p) for p in sources()}


def test_every_module_has_a_layer():
    unknown = [m for m in graph() if not m.startswith(("largestep.experiments", "deep_nets")) and m not in LAYERS]
    assert not unknown, f"add {unknown} to LAYERS"


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_no_module_imports_from_a_layer_above_it():
    upward = [f"{a} ({layer(a)}) imports {b} ({layer(b)})" for a, targets in graph().items() for b in targets
              if layer(b) > layer(a) and not (a.startswith("largestep.experiments.") and b == "largestep.experiments")]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_a_cycle_and_an_upward_import(tmp_path, monkeypatch):
    """The two checks above can fail: a planted cycle and a planted upward import are found."""
    edges = graph()
    edges["largestep.stats"] = edges["largestep.stats"] | {"largestep.claims"}  # claims -> stats -> claims
    monkeypatch.setattr(__import__(__name__), "graph", lambda: edges)
    with pytest.raises(pytest.fail.Exception, match="import cycle"):
        test_no_import_cycles()
    with pytest.raises(AssertionError, match="largestep.stats .0. imports largestep.claims .2."):
        test_no_module_imports_from_a_layer_above_it()
