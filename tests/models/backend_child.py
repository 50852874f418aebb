"""Child process of test_backends: save a net on this process's Keras backend, or predict with saved ones.

Usage: backend_child.py save FILE.keras | backend_child.py predict DIR BACKEND...
(``predict`` loads ``DIR/<backend>.keras`` for each BACKEND and writes ``DIR/predictions_<this backend>.json``.)
"""
import json
import sys
from pathlib import Path

import keras
import numpy as np

import keras_resnets

INPUT = np.random.default_rng(1).normal(size=(3, 12, 12, 3)).astype("float32")


def save(path: str) -> None:
    """A pre-activation bottleneck net (projection shortcuts) with random weights and BN statistics."""
    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model("preact_resnet164", depth=11, input_shape=(12, 12, 3), classes=5)
    rng = np.random.default_rng(sum(map(ord, keras.backend.backend())))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    model.save(path)


def predict(directory: str, backends) -> None:
    out = {}
    for backend in backends:
        model = keras.saving.load_model(Path(directory) / f"{backend}.keras", safe_mode=True, compile=False)
        out[backend] = keras.ops.convert_to_numpy(model(INPUT, training=False)).tolist()
    (Path(directory) / f"predictions_{keras.backend.backend()}.json").write_text(json.dumps(out))


if __name__ == "__main__":
    if sys.argv[1] == "save":
        save(sys.argv[2])
    else:
        predict(sys.argv[2], sys.argv[3:])
