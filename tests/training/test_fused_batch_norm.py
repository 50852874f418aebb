"""BN through TensorFlow's fused kernel while training: the same training as Keras' own BN code."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.training.build import compile_model
from keras_resnets.training.fused_batch_norm import use_fused_batch_norm
from keras_resnets.training.recipes import get_recipe

pytestmark = pytest.mark.tf_only


def _model(fused: bool):
    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model("cifar_resnet20", depth=8, input_shape=(12, 12, 3), classes=10)
    return compile_model(model, get_recipe("cifar10_study"), total_steps=100, fused_batch_norm=fused)


def test_fused_training_matches_keras_batch_norm():
    reference, fused = _model(False), _model(True)
    fused.set_weights(reference.get_weights())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 12, 12, 3)).astype("float32")
    y = rng.integers(0, 10, size=(16,)).astype("int32")
    for _ in range(3):
        a, b = reference.train_on_batch(x, y)[0], fused.train_on_batch(x, y)[0]
        np.testing.assert_allclose(b, a, rtol=1e-4)
    for w_ref, w_fused in zip(reference.weights, fused.weights):  # kernels, gamma/beta and moving statistics
        np.testing.assert_allclose(w_fused.numpy(), w_ref.numpy(), rtol=1e-3, atol=1e-5, err_msg=w_ref.path)
    np.testing.assert_allclose(fused.predict(x, verbose=0), reference.predict(x, verbose=0), rtol=1e-3, atol=1e-5)

    # the fused kernel is what trains (and only training: inference is Keras' own code)
    bn = next(layer for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert "FusedBatchNormV3" in _op_types(bn, training=True)
    assert "FusedBatchNormV3" not in _op_types(bn, training=False)
    assert use_fused_batch_norm(fused) == 0  # already switched


def _op_types(layer, training: bool) -> set:
    import tensorflow as tf

    spec = tf.TensorSpec((None, *layer.input.shape[1:]), tf.float32)
    graph = tf.function(lambda t: layer(t, training=training)).get_concrete_function(spec).graph
    return {op.type for op in graph.get_operations()}


def test_unfusable_calls_run_keras_code():
    layer = keras.layers.BatchNormalization(epsilon=1e-6)  # under the kernel's minimum epsilon
    model = keras.Sequential([keras.Input((4, 4, 2)), layer])
    assert use_fused_batch_norm(model) == 1
    assert "FusedBatchNormV3" not in _op_types(layer, training=True)
    x = np.random.default_rng(1).normal(size=(8, 4, 4, 2)).astype("float32")
    expected = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-6)
    np.testing.assert_allclose(np.asarray(layer(x, training=True)), expected, rtol=1e-4, atol=1e-4)
