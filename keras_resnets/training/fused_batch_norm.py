"""Batch normalisation through TensorFlow's fused kernel while training on the TensorFlow backend.

Keras 3 computes ``BatchNormalization`` from ``ops.moments`` and elementwise ops on every backend. On
TensorFlow a training step then runs about ten small kernels per BN layer forward and more backward,
where TensorFlow has one fused kernel each way (``FusedBatchNormV3`` / ``FusedBatchNormGradV3``; oneDNN's,
fused with the following ReLU, when oneDNN is on). In the per-op profile of a ``cifar_resnet20`` step
(``benchmarks/profile_tf_train_step.py``) Keras' BN took about a third of the op time, with the fused
kernel 6 %; in alternating runs the step took 1.3x less CPU time (1.1x for ``resnet50``), losses equal
to float32 rounding (docs/training.md, "Where the time goes on TensorFlow").

:func:`use_fused_batch_norm` changes how a model's BN layers *train*, nothing else: the layers stay
``keras.layers.BatchNormalization`` (saved files, other backends and inference are untouched), the
moving statistics follow Keras' rule (the kernel's unbiased batch variance is scaled back to the biased
one Keras averages), and any call the fused kernel does not cover (not 4-D channels-last float32,
masked, renorm, synchronised, no scale or centre, epsilon under the kernel's minimum) runs Keras' code.
"""
from __future__ import annotations

import keras

# tf.nn.fused_batch_norm raises a smaller epsilon to this; below it Keras' own code keeps the exact value
_KERNEL_MIN_EPSILON = 1.001e-5


def _fusable(layer, inputs, training, mask) -> bool:
    return bool(training) and layer.trainable and mask is None and not layer.renorm \
        and not getattr(layer, "synchronized", False) and layer.scale and layer.center \
        and layer.epsilon >= _KERNEL_MIN_EPSILON and len(inputs.shape) == 4 and layer.axis in (-1, 3) \
        and inputs.dtype == "float32" and layer.dtype_policy.compute_dtype == "float32"


def _fused_call(layer, keras_call):
    import tensorflow as tf

    def call(inputs, training=None, mask=None):
        if not _fusable(layer, inputs, training, mask):
            return keras_call(inputs, training=training, mask=mask)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, layer.gamma, layer.beta, epsilon=layer.epsilon, data_format="NHWC", is_training=True)
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], tf.float32)
        variance = variance * (count - 1.0) / count  # the kernel's batch variance is unbiased; Keras' is not
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean * momentum + tf.stop_gradient(mean) * (1.0 - momentum))
        layer.moving_variance.assign(
            layer.moving_variance * momentum + tf.stop_gradient(variance) * (1.0 - momentum))
        return outputs

    return call


def use_fused_batch_norm(model: keras.Model) -> int:
    """On the TensorFlow backend, make every ``BatchNormalization`` layer of ``model`` train through the
    fused kernel (before the train step is traced, i.e. before ``fit``); elsewhere do nothing.

    Args:
        model: a built Keras model (nested models included).

    Returns:
        The number of layers switched (0 on the JAX and torch backends, or when called twice).
    """
    if keras.backend.backend() != "tensorflow":
        return 0
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer) is keras.layers.BatchNormalization and not getattr(layer, "_keras_resnets_fused", False):
            layer.call = _fused_call(layer, layer.call)
            layer._keras_resnets_fused = True
            count += 1
    return count
