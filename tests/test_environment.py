"""Environment defaults set before TensorFlow is imported (keras_resnets.environment)."""
import os
import subprocess
import sys

import pytest

from keras_resnets import environment


@pytest.mark.backend_independent
def test_onednn_is_on_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    environment.apply_tensorflow_defaults()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "1"
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    environment.apply_tensorflow_defaults()
    assert os.environ["TF_ENABLE_ONEDNN_OPTS"] == "0"


@pytest.mark.backend_independent
def test_import_applies_the_defaults_before_keras_is_imported():
    """``import keras_resnets`` sets them before Keras (which imports TensorFlow on its backend) loads:
    the package imports nothing heavy itself, so the first Keras import comes through its model code."""
    code = ("import os, sys\n"
            "class AtKeras:\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'keras':\n"
            "            print('at keras import:', os.environ.get('TF_ENABLE_ONEDNN_OPTS'))\n"
            "sys.meta_path.insert(0, AtKeras())\n"
            "import keras_resnets\n"
            "import keras_resnets.layers\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.splitlines()[0] == "at keras import: 1", out.stdout + out.stderr[-2000:]
