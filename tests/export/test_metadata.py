"""The metadata step on small graphs: what it writes for int8 inputs, and what it refuses in one line."""
from __future__ import annotations

import numpy as np
import pytest

from keras_resnets.export.errors import ExportError
from keras_resnets.export.metadata import ImageInput, read_metadata, with_metadata

pytestmark = pytest.mark.tf_only

MEAN, STD = (120.0, 115.0, 100.0), (60.0, 58.0, 62.0)
LABELS = ["cat", "dog"]


def _int8_classifier(io_type) -> bytes:
    """Conv + pooled dense on a 4x4x3 input, full integer with ``io_type`` I/O (normalised input)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 4)).astype(np.float32))
    dense = tf.constant(rng.normal(size=(4, 2)).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([1, 4, 4, 3], tf.float32)])
    def model(x):
        y = tf.reduce_mean(tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME")), axis=[1, 2])
        return tf.nn.softmax(tf.matmul(y, dense))

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, 4, 4, 3)).astype(np.float32)] for _ in range(8))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = io_type
    return converter.convert()


def test_int8_input_gets_the_models_normalisation_and_the_client_notes_say_why_mediapipe_refuses_it():
    import tensorflow as tf

    result = with_metadata(_int8_classifier(tf.int8), name="tiny", description="d", task="classification",
                           image=ImageInput(4, 4, 3, MEAN, STD), labels=LABELS)
    decoded = read_metadata(result.flatbuffer)
    np.testing.assert_allclose(decoded["mean"], MEAN)
    np.testing.assert_allclose(decoded["std"], STD)
    assert decoded["files"] == {"labels.txt": "cat\ndog\n"}
    assert result.section["input_type"] == "int8"
    assert result.section["mediapipe"].startswith("MediaPipe feeds uint8 or float32 image inputs, not int8")
    assert "not per-channel normalisation" in result.section["mediapipe"]


def test_refusals_are_one_line_and_name_the_value():
    import tensorflow as tf

    uint8 = _int8_classifier(tf.uint8)  # calibrated on normalised values: its uint8 input is not pixels
    with pytest.raises(ExportError, match=r"^the uint8 input is quantized with scale [0-9.e-]+, zero point \d+; image "
                                          r"clients feed pixels 0..255 as they are"):
        with_metadata(uint8, name="t", description="d", task="classification", image=ImageInput(4, 4, 3, MEAN, STD),
                      labels=LABELS)
    with pytest.raises(ExportError, match=r"^standard image metadata describes RGB input; this model takes 1 "):
        with_metadata(uint8, name="t", description="d", task="classification", image=ImageInput(4, 4, 1),
                      labels=LABELS)
    with pytest.raises(ExportError, match=r"^3 labels for an output of 2 classes$"):
        with_metadata(uint8, name="t", description="d", task="classification", image=ImageInput(4, 4, 3),
                      labels=[*LABELS, "cow"])
    with pytest.raises(ExportError, match=r"^metadata task must be one of classification, segmentation; got 'x'$"):
        with_metadata(uint8, name="t", description="d", task="x", image=ImageInput(4, 4, 3), labels=LABELS)
