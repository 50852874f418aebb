"""The model code on every Keras backend: train, save and load in-process (run under each backend by
``make test``), and ``.keras`` files that move between TensorFlow, JAX and PyTorch."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_resnets

from .helpers import assert_roundtrip

CHILD = os.path.join(os.path.dirname(__file__), "backend_child.py")
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.mark.torch
def test_a_small_net_trains_saves_and_loads_on_this_backend(tmp_path):
    """A few SGD steps lower the loss on a fixed batch; the trained net round-trips through .keras."""
    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model("cifar_resnet20", input_shape=(12, 12, 3), classes=4, depth=8)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 12, 12, 3)).astype("float32")
    y = (np.arange(16) % 4).astype("int32")
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
    assert_roundtrip(model, tmp_path, x[:2])


def _child(backend, *args):
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
           "XLA_FLAGS": "--xla_backend_optimization_level=0",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, CHILD, *map(str, args)], env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


@pytest.mark.backend_independent
@pytest.mark.slow
def test_keras_files_move_between_tensorflow_jax_and_torch_with_identical_predictions(tmp_path):
    """Each backend saves a net (random weights and BN statistics: a projection shortcut, pre-activation
    and post-activation BNs) and predicts a fixed batch; every backend loads every file and predicts
    the same numbers (float32 rounding)."""
    for backend in BACKENDS:
        _child(backend, "save", tmp_path / f"{backend}.keras")
    predictions = {}
    for backend in BACKENDS:
        _child(backend, "predict", tmp_path, *BACKENDS)
        predictions[backend] = json.loads((tmp_path / f"predictions_{backend}.json").read_text())
    for source in BACKENDS:
        reference = np.asarray(predictions[source][source])
        assert np.isfinite(reference).all() and np.abs(reference).max() > 1e-3
        for loader in BACKENDS:
            np.testing.assert_allclose(np.asarray(predictions[loader][source]), reference, rtol=1e-4, atol=1e-4,
                                       err_msg=f"saved on {source}, loaded on {loader}")
