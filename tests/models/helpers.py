"""Helpers shared by the model tests (Keras only, any backend)."""
import numpy as np

import keras
from keras_resnets.models.registry import get_entry


def small_input_shape(name: str) -> tuple:
    """A small input every stride of the model still sees (fast, and the real code paths)."""
    return (64, 64, 3) if get_entry(name).family == "segmentation" else (32, 32, 3)


def small_overrides(name: str) -> dict:
    """Keywords for a small but complete build of ``name`` in tests."""
    overrides = {"input_shape": small_input_shape(name), "classes": 5}
    if "fc_width" in get_entry(name).keywords():
        overrides["fc_width"] = 32  # Yu & Koltun's 4096-wide fc6/fc7 are 134M parameters
    return overrides


def trainable_count(model) -> int:
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def weight_tensor_count(model) -> int:
    """Convolution and dense kernels only (the convention of the pre-activation paper's tables)."""
    return int(sum(np.prod(layer.kernel.shape) for layer in model.layers
                   if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))))


def random_images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, *shape)).astype("float32")


def infer(model, x):
    """Inference outputs as numpy (the first output of multi-output models).

    On JAX the whole graph is compiled once (``predict``): eager calls compile every operation
    separately, which costs minutes over the zoo. TensorFlow runs the graph eagerly.
    """
    if keras.backend.backend() == "jax":
        y = model.predict(x, verbose=0)
    else:
        y = model(x, training=False)
    return keras.ops.convert_to_numpy(keras.tree.flatten(y)[0])


def assert_roundtrip(model, tmp_path, x, expected=None):
    """Save to .keras, load with safe_mode on, and compare inference outputs."""
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    expected = infer(model, x) if expected is None else expected
    assert np.isfinite(expected).all(), f"{model.name}: non-finite outputs (assert_allclose counts NaN as equal)"
    np.testing.assert_allclose(infer(loaded, x), expected, atol=1e-5, rtol=1e-5)
    return loaded


def randomise_statistics(model, seed=0, conv_biases=True):
    """Give BN statistics (and conv biases) non-trivial values, so weight ports are really exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
        elif conv_biases and isinstance(layer, keras.layers.Conv2D) and layer.use_bias:
            kernel, bias = layer.get_weights()
            layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
