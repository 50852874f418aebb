"""No import circle in keras_resnets, counting the imports made inside functions.

An import inside a function runs later than one at the top of a module, but a circle through it still
ties two modules together: each needs the other, so neither can be read, tested or moved alone. The
graph below has an edge for every ``import keras_resnets...`` / ``from keras_resnets... import ...``
anywhere in a module. The lazy name tables (``_LAZY`` in the package ``__init__`` files, the
``"module:function"`` builders of ``models/catalog.py``, ``cli_args.OwnedChoices``) are strings, not
imports: they load their owner on first use and are not edges.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "keras_resnets"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path = ROOT, package: str = PACKAGE) -> dict:
    """``module -> {modules it imports}`` over the package's own modules, top-level and function-level."""
    paths = {_module_name(p): p for p in (root / package).rglob("*.py")} if root == ROOT else {
        ".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (root / package).rglob("*.py")}
    graph = {}
    for module, path in paths.items():
        edges = set()
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                    base = ".".join(anchor + ([base] if base else []))
                names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in paths else base for alias in node.names]
            else:
                continue
            edges.update(name for name in names if name in paths and name != module)
        graph[module] = edges
    return graph


def find_cycle(graph: dict) -> list:
    """One import circle ``[a, b, ..., a]``, or ``[]``."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == "open":
                return stack[stack.index(target):] + [target]
            if target not in state:
                found = visit(target)
                if found:
                    return found
        stack.pop()
        state[node] = "done"
        return []

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return []


def test_keras_resnets_has_no_import_circle():
    graph = import_graph()
    assert len(graph) > 50 and graph["keras_resnets.training.loop"], "the graph missed the package's modules"
    cycle = find_cycle(graph)
    assert not cycle, "import circle: " + " -> ".join(cycle)


def test_the_check_sees_a_circle_through_a_function_level_import(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg import b\n")
    (package / "b.py").write_text("def f():\n    from pkg.a import g\n")
    (package / "c.py").write_text("from . import a\n")
    graph = import_graph(tmp_path, "pkg")
    assert graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
