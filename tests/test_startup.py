"""What needs no model starts without Keras, TensorFlow or JAX (checked in a fresh child process)."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.backend_independent

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAVY = ("keras", "tensorflow", "jax")

CHILD = """
import contextlib, io, json, sys
{code}
print(json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""

CLI = """
from keras_resnets.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main({argv!r})
    except SystemExit as exit:
        code = exit.code
assert code == {code}, (code, out.getvalue())
assert {expect!r} in out.getvalue(), out.getvalue()
"""


def heavy_modules_after(code: str) -> list:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (ROOT, os.environ.get("PYTHONPATH")) if p)}
    proc = subprocess.run([sys.executable, "-c", CHILD.format(code=code, heavy=HEAVY)], capture_output=True,
                          text=True, env=env, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.splitlines()[-1])


def test_import_keras_resnets_loads_no_backend():
    assert heavy_modules_after("import keras_resnets\nassert 'resnet50' in keras_resnets.list_models()") == []


@pytest.mark.parametrize("argv, code, expect", [
    (["list", "cifar_*"], 0, "CIFAR ResNet-56"),
    (["--help"], 0, "COMMAND"),
    (["info", "--help"], 0, "--receptive-field"),
    (["train", "--model", "resnet51"], 2, ""),
])
def test_cli_without_a_model_loads_no_backend(argv, code, expect):
    assert heavy_modules_after(CLI.format(argv=argv, code=code, expect=expect)) == []


def test_the_checks_see_a_backend_when_one_loads():
    assert heavy_modules_after("import keras_resnets\nkeras_resnets.get_entry('resnet18').keywords()") != []


def test_native_noise_is_dropped_and_everything_else_comes_back():
    code = (
        "import os\nfrom keras_resnets.environment import native_noise_filtered\n"
        "with native_noise_filtered():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    os.write(2, b'E0000 00:00:1.2 7 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\\n')\n"
        "    os.write(2, b'a real error\\n')\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, "PYTHONPATH": ROOT, "KERAS_RESNETS_VERBOSE_TF": ""})
    assert proc.returncode == 0 and proc.stderr == "a real error\n", proc.stderr
