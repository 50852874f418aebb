"""A task's behaviour lives in ``keras_resnets/tasks.py``: no other module names a task to branch on it."""
import ast
from pathlib import Path

from keras_resnets.tasks import TASKS

PACKAGE = Path(__file__).resolve().parents[1] / "keras_resnets"
# Modules that declare which task something belongs to (dataset entries, the per-pixel model family and
# its catalog entries).
DECLARING = {"tasks.py", "data/registry.py", "models/segmentation.py", "models/catalog.py"}


def _task_names_in_code(path: Path) -> list:
    """``line: name`` of every string constant that is a task name, docstrings left out."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            continue
        if isinstance(node, ast.Constant) and id(node) not in docstrings and node.value in TASKS:
            found.append(f"{node.lineno}: {node.value}")
    return found


def test_no_module_outside_tasks_names_a_task():
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative not in DECLARING and _task_names_in_code(path):
            offenders[relative] = _task_names_in_code(path)
    assert not offenders, f"ask the Task (keras_resnets/tasks.py) instead of comparing its name: {offenders}"


def test_the_check_finds_a_branch_on_a_task_name(tmp_path):
    """The scan above sees a comparison with a task name (and skips docstrings)."""
    module = tmp_path / "branching.py"
    module.write_text('"""classification"""\ndef f(task):\n    return task == "segmentation"\n')
    assert _task_names_in_code(module) == ["3: segmentation"]
