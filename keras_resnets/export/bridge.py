"""Rebuild a Keras 3 functional graph in tf_keras (Keras 2), the only Keras tfmot 0.8 accepts.

The translation is generic: every layer of :func:`~keras_resnets.export.graph.layer_graph` is
mapped by class name to the tf_keras layer of the same name, with its Keras 3 config adapted
(dtype policies become dtype names; initializers and keys tf_keras does not know are dropped), then called on its
inputs in the original order. The package's custom layers get tf_keras equivalents in
:data:`CUSTOM_EQUIVALENTS`; anything else raises an error naming the layer. Weights are copied
layer by layer; :func:`check_equal_outputs` proves the copy before any fine-tuning.

Only the tf_keras side lives here and it imports tf_keras lazily: it runs in the worker process
(:mod:`keras_resnets.export.optimize_worker`) because importing tfmot switches ``tf.keras`` to
tf_keras for the whole process.
"""
from __future__ import annotations

import inspect

import numpy as np

from keras_resnets.export.errors import ExportError, UnsupportedOperationError
from keras_resnets.export.graph import LayerGraph

# Layers that are the identity at inference: the bridge passes their input through.
INFERENCE_IDENTITY = ("keras_resnets>StochasticDepth",)
# Config keys every tf_keras layer accepts through the base Layer constructor.
_BASE_LAYER_KEYS = ("name", "trainable", "dtype")
EQUALITY_TOLERANCE = 1e-5


def _channel_zero_pad_class():
    import tensorflow as tf
    import tf_keras

    class ChannelZeroPad(tf_keras.layers.Layer):
        """tf_keras twin of ``keras_resnets.layers.ChannelZeroPad``: append ``pad`` zero channels."""

        def __init__(self, pad: int, **kwargs):
            super().__init__(**kwargs)
            self.pad = int(pad)

        def call(self, inputs):
            return tf.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, self.pad]])

        def get_config(self):
            return {**super().get_config(), "pad": self.pad}

    return ChannelZeroPad


# registered name -> factory of the tf_keras class (built lazily: tf_keras is imported on use)
CUSTOM_EQUIVALENTS = {"keras_resnets>ChannelZeroPad": _channel_zero_pad_class}


def custom_objects() -> dict:
    """tf_keras custom layer classes by class name (for cloning and quantize scopes)."""
    classes = [factory() for factory in CUSTOM_EQUIVALENTS.values()]
    return {cls.__name__: cls for cls in classes}


def build_tf_keras_model(graph: LayerGraph, weights: dict, classes: dict | None = None):
    """Build the tf_keras twin of ``graph`` and load ``weights`` (``"layer/index" -> array``).

    Args:
        graph: the Keras 3 model's :class:`LayerGraph`.
        weights: every layer's weights, keyed ``"<layer name>/<index>"``.
        classes: tf_keras custom classes from :func:`custom_objects` (built when omitted).

    Raises:
        UnsupportedOperationError: a layer class tf_keras has no equivalent for.
    """
    import tf_keras

    classes = classes or custom_objects()
    tensors, layers = {}, []
    for node in graph.nodes:
        if node.class_name == "InputLayer":
            shape = node.config.get("batch_shape") or node.config.get("batch_input_shape")
            tensors[node.name] = tf_keras.Input(shape=tuple(shape[1:]), name=node.name)
            continue
        inputs = [tensors[name] for name in node.inbound]
        if node.registered_name in INFERENCE_IDENTITY:
            tensors[node.name] = inputs[0]
            continue
        layer = _make_layer(node, classes)
        multi_input = node.class_name in ("Add", "Multiply", "Subtract", "Average", "Maximum", "Minimum",
                                          "Concatenate", "Dot")
        tensors[node.name] = layer(inputs if multi_input else inputs[0])
        layers.append((node.name, layer))
    model = tf_keras.Model([tensors[n] for n in graph.inputs], [tensors[n] for n in graph.outputs])
    counts = {}
    for key in weights:
        layer_name = key.rsplit("/", 1)[0]
        counts[layer_name] = counts.get(layer_name, 0) + 1
    for name, layer in layers:
        count = counts.get(name, 0)
        if count != len(layer.weights):
            raise ExportError(f"layer {name!r} has {count} weights in the Keras model and "
                              f"{len(layer.weights)} in its tf_keras twin")
        layer.set_weights([weights[f"{name}/{i}"] for i in range(count)])
    return model


def _make_layer(node, classes: dict):
    import tf_keras

    if node.registered_name in CUSTOM_EQUIVALENTS:
        cls = classes[node.class_name]
    elif node.registered_name and node.registered_name != node.class_name:
        raise UnsupportedOperationError(
            f"layer {node.name!r} ({node.registered_name}) has no tf_keras equivalent; supported custom "
            f"layers: {sorted(CUSTOM_EQUIVALENTS) + list(INFERENCE_IDENTITY)}")
    else:
        cls = getattr(tf_keras.layers, node.class_name, None)
        if cls is None:
            raise UnsupportedOperationError(f"layer {node.name!r} ({node.class_name}) has no tf_keras equivalent")
    try:
        return cls(**_translate_config(cls, node.config))
    except (TypeError, ValueError) as err:
        raise UnsupportedOperationError(
            f"layer {node.name!r} ({node.class_name}) cannot be rebuilt in tf_keras: {err}") from None


def _translate_config(cls, config: dict) -> dict:
    """Keras 3 layer config -> keyword arguments the tf_keras class accepts."""
    accepted = set(_BASE_LAYER_KEYS)
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            accepted.update(inspect.signature(klass.__init__).parameters)
    out = {}
    for key, value in config.items():
        if key not in accepted or key in ("self", "kwargs") or key.endswith("_initializer"):
            continue  # initializers are irrelevant: the trained weights are copied afterwards
        if key == "dtype" and isinstance(value, dict):  # a Keras 3 DTypePolicy
            value = value.get("config", {}).get("name", "float32")
        out[key] = _strip_modules(value)
    return out


def _strip_modules(value):
    """Keras 3 serialized objects ({module, class_name, config, registered_name}) -> tf_keras form."""
    if isinstance(value, dict) and "class_name" in value and "config" in value:
        return {"class_name": value["class_name"], "config": _strip_modules(value["config"])}
    if isinstance(value, dict):
        return {k: _strip_modules(v) for k, v in value.items()}
    return value


def check_equal_outputs(model, images: np.ndarray, reference: np.ndarray) -> float:
    """Max abs difference between the tf_keras twin and the Keras 3 outputs; raise above tolerance."""
    outputs = model.predict(images, verbose=0, batch_size=64)
    diff = float(np.max(np.abs(outputs - reference)))
    if diff > EQUALITY_TOLERANCE:
        raise ExportError(f"the tf_keras rebuild differs from the Keras model by {diff:.3g} "
                          f"(tolerance {EQUALITY_TOLERANCE:g}); weights were not transferred faithfully")
    return diff
