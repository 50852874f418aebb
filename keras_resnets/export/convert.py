"""SavedModel with a serving signature, and its conversion to TFLite in every precision.

Both Keras 3 models and tf_keras models (from the QAT / pruning bridge) go through the same path:
a ``tf.Module`` holding the model and one ``serving_default`` function (images in, probabilities
out) is saved, then converted with ``tf.lite.TFLiteConverter.from_saved_model``. A static batch of 1
lets the converter fold BatchNormalization into the preceding convolution and keep dilated
convolutions as single ``CONV_2D`` ops; a dynamic batch (``None``) is for servers.
"""
from __future__ import annotations

import re

import numpy as np

from keras_resnets.export.errors import ExportError, UnsupportedOperationError
from keras_resnets.export.variants import AUTO_CANDIDATES, INTEGER_IO_TYPES  # noqa: F401  (INTEGER_IO_TYPES re-exported)

TFLITE_PRECISIONS = AUTO_CANDIDATES  # every post-training precision
SIGNATURE_KEY = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"


def write_saved_model(model, path, *, input_shape, batch_size=1, mean=None, std=None,
                      add_softmax=False) -> None:
    """Save ``model`` with a ``serving_default`` signature ``images -> probabilities``.

    Args:
        model: a Keras 3 or tf_keras model taking normalised images.
        path: SavedModel directory to create.
        input_shape: ``(height, width, channels)``.
        batch_size: static batch size, or ``None`` for a dynamic batch.
        mean, std: per-channel normalisation (0..255 scale). When given, the signature takes raw
            pixels (float 0..255) and normalises them itself, so the edge side feeds pixels.
        add_softmax: apply softmax to the model's output (for models that output logits).
    """
    import tensorflow as tf

    preprocess = mean is not None
    if preprocess:
        offset = tf.constant(np.asarray(mean, np.float32))
        scale = tf.constant(1.0 / np.asarray(std, np.float32))
    spec = tf.TensorSpec([batch_size, *input_shape], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images):
        x = (images - offset) * scale if preprocess else images
        y = model(x, training=False)
        if add_softmax:
            y = tf.nn.softmax(y, axis=-1)
        return {OUTPUT_NAME: y}

    if _is_keras3(model):
        import keras

        # ExportArchive tracks Keras 3 variables so that the converter can freeze them into constants.
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.add_endpoint(SIGNATURE_KEY, serve)
        archive.write_out(str(path), verbose=False)
    else:
        # Track only the variables the signature captures: saving the tf_keras model itself would
        # serialize every (QAT-wrapped) layer with its traced functions and slow saving and
        # conversion several-fold, for the same flatbuffer.
        module = tf.Module()
        module.model_variables = list(model.variables)
        module.serve = serve
        tf.saved_model.save(module, str(path), signatures={SIGNATURE_KEY: serve.get_concrete_function()})


def _is_keras3(model) -> bool:
    return type(model).__module__.startswith("keras.") or any(
        cls.__module__.startswith("keras.src") for cls in type(model).__mro__)


def convert_saved_model(saved_model_dir, precision: str, *, representative=None,
                        io_type: str = "int8") -> bytes:
    """Convert a SavedModel written by :func:`write_saved_model` to a TFLite flatbuffer.

    Args:
        saved_model_dir: the SavedModel directory.
        precision: ``"float32"``, ``"float16"`` (float16 weights), ``"dynamic"`` (int8 weights,
            float activations) or ``"int8"`` (full integer: weights, activations, input/output).
        representative: for ``"int8"``: an array of calibration inputs ``(n, h, w, c)`` in the
            signature's input space, drawn from the training pipeline.
        io_type: for ``"int8"``: the input/output tensor type, ``"int8"`` or ``"uint8"``.

    A model from quantization-aware training carries fake-quantization nodes; the converter then
    uses their learned ranges and the representative set only fills in the remaining tensors.

    Raises:
        UnsupportedOperationError: the graph holds an op TFLite's builtin set cannot express.
        ExportError: a bad precision, io type or representative set.
    """
    converter = make_converter(saved_model_dir, precision, representative=representative, io_type=io_type)
    try:
        return converter.convert()
    except Exception as err:  # ConverterError and friends
        raise UnsupportedOperationError(_conversion_message(err)) from None


def make_converter(saved_model_dir, precision: str, *, representative=None, io_type: str = "int8"):
    """A ``TFLiteConverter`` for the SavedModel set up for ``precision`` (see :func:`convert_saved_model`)."""
    import tensorflow as tf

    if precision not in TFLITE_PRECISIONS:
        raise ExportError(f"precision must be one of {TFLITE_PRECISIONS}, got {precision!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir), signature_keys=[SIGNATURE_KEY])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif precision == "dynamic":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    elif precision == "int8":
        if io_type not in INTEGER_IO_TYPES:
            raise ExportError(f"io_type must be one of {INTEGER_IO_TYPES}, got {io_type!r}")
        if representative is None or len(representative) == 0:
            raise ExportError("full-integer int8 needs a representative set (calibration images)")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative_generator(representative)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8 if io_type == "int8" else tf.uint8
        converter.inference_output_type = converter.inference_input_type
    return converter


def _representative_generator(images):
    images = np.asarray(images, np.float32)

    def generate():
        for i in range(len(images)):
            yield [images[i:i + 1]]

    return generate


def _conversion_message(err: Exception) -> str:
    """Reduce the converter's multi-page error to the ops it could not express."""
    text = str(err)
    ops = sorted(set(re.findall(r"\b(tf\.[A-Z][A-Za-z0-9_]*)", text)))
    if ops:
        return (f"TFLite cannot express op(s) {', '.join(ops)} with its builtin operators; "
                "replace the layer that uses them or export to saved_model instead")
    first = next((line.strip() for line in text.splitlines() if line.strip()), type(err).__name__)
    return f"TFLite conversion failed: {first[:400]}"
