"""Notebooks and examples stay valid: every code cell compiles, the model cells run, examples parse."""
import ast
import json
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def _code_cells(path):
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_cells_compile(path):
    for source in _code_cells(path):
        compile(source, str(path), "exec")


def test_quickstart_model_cells_run():
    """The cells before training (building and inspecting models) run as written."""
    namespace = {}
    for source in _code_cells(ROOT / "notebooks" / "quickstart.ipynb")[:3]:
        exec(compile(source, "quickstart", "exec"), namespace)
    assert tuple(namespace["backbone"].output.shape) == (None, 32, 32, 2048)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_parse_and_document_themselves(path):
    tree = ast.parse(path.read_text())
    assert ast.get_docstring(tree), f"{path.name} needs a module docstring saying what it does"
