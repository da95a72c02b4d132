"""The package's imports flow one way: no module imports one that imports it."""

import ast
from pathlib import Path

import picasso_astro

PACKAGE = Path(picasso_astro.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path, module, modules):
    """Package modules imported anywhere in a file (function bodies included)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            names = [
                f"{source}.{alias.name}"
                if f"{source}.{alias.name}" in modules
                else source
                for alias in node.names
            ]
        else:
            continue
        found |= {name for name in names if name in modules and name != module}
    return found


def import_graph():
    """Return ``{module: set of package modules it imports}``."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: _imports(path, name, paths) for name, path in paths.items()}


def find_cycle(graph):
    """Return one import cycle as a list of modules, or None."""
    state = {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state:
                cycle = visit(nxt, stack)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [])
            if cycle:
                return cycle
    return None


def test_no_import_cycle_in_the_package():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_cycle_finder_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_layers_point_downwards():
    graph = import_graph()
    lower = {
        "picasso_astro.inputs",
        "picasso_astro.sdss",
        "picasso_astro.images",
        "picasso_astro.preprocess",
        "picasso_astro._inference",
    }
    upper = {
        "picasso_astro._plan",
        "picasso_astro._stream",
        "picasso_astro._dask",
        "picasso_astro._run",
        "picasso_astro.predict",
        "picasso_astro.catalogue",
        "picasso_astro.cli",
    }
    for module in lower:
        assert not graph[module] & upper, f"{module} imports {graph[module] & upper}"
    inference = {m for m in graph if not m.startswith("picasso_astro.training")}
    for module in inference:
        training = {m for m in graph[module] if m.startswith("picasso_astro.training")}
        assert not training, f"{module} imports training code {training}"
