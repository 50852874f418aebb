"""The dataset registry (``keras_resnets/data/registry.py``) is the only place a dataset name is resolved:
no other module compares a name with a registered dataset's (``name == "digits"``, ``name in (...)``)."""
import ast
from pathlib import Path

from keras_resnets.data import sources, textured_digits
from keras_resnets.data.registry import DATASETS

PACKAGE = Path(__file__).resolve().parents[1] / "keras_resnets"
NAMES = set(DATASETS)
NAME_CONSTANTS = {"DIGITS": sources.DIGITS, "FOLDER": sources.FOLDER, "NAME": textured_digits.NAME}


def _is_dataset_name(node) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in NAMES
    if isinstance(node, (ast.Name, ast.Attribute)):
        return (node.id if isinstance(node, ast.Name) else node.attr) in NAME_CONSTANTS
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_dataset_name(element) for element in node.elts)
    return False


def dataset_name_comparisons(path: Path) -> list:
    """``line`` of every comparison with a dataset name (a literal, a name constant, or a tuple of them)."""
    return [node.lineno for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Compare) and any(map(_is_dataset_name, [node.left, *node.comparators]))]


def test_no_module_outside_the_registry_dispatches_on_a_dataset_name():
    assert {"digits", "shapes", "folder"} <= NAMES and set(NAME_CONSTANTS.values()) <= NAMES
    offenders = {path.relative_to(PACKAGE).as_posix(): dataset_name_comparisons(path)
                 for path in sorted(PACKAGE.rglob("*.py")) if path.name != "registry.py" or path.parent.name != "data"}
    assert not {k: v for k, v in offenders.items() if v}, "resolve dataset names in keras_resnets/data/registry.py"


def test_the_check_finds_a_comparison_with_a_dataset_name(tmp_path):
    module = tmp_path / "branching.py"
    module.write_text('def f(name):\n    if name in (sources.DIGITS, "x"):\n        return 1\n    return name == "shapes"\n')
    assert dataset_name_comparisons(module) == [2, 4]
