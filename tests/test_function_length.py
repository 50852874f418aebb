"""Code in steps: no function of the training, tuning or export packages is longer than sixty lines."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "keras_resnets"
LIMIT = 60


def long_functions(folder: Path, limit: int = LIMIT) -> list:
    """``file:function`` of every function in ``folder`` with more than ``limit`` lines below its docstring."""
    long = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
                if node.end_lineno - body[0].lineno + 1 > limit:
                    long.append(f"{path.name}:{node.name}")
    return long


@pytest.mark.parametrize("package", ["training", "tuning", "export"])
def test_no_function_is_longer_than_sixty_lines(package):
    assert long_functions(PACKAGE / package) == []


def test_the_check_counts_the_lines_below_the_docstring(tmp_path):
    (tmp_path / "m.py").write_text('def f():\n    """Doc."""\n' + "    x = 1\n" * 3 + "def g():\n    pass\n")
    assert long_functions(tmp_path, limit=3) == [] and long_functions(tmp_path, limit=2) == ["m.py:f"]


def test_export_api_stays_short():
    """``export_model`` reads as plan -> source -> data -> variants -> verify -> publish (about 200 lines)."""
    assert len((PACKAGE / "export" / "api.py").read_text().splitlines()) <= 200
