"""The delegate/op section on a graph that needs a Flex op (the project's exports need none)."""
from __future__ import annotations

import pytest

from keras_resnets.export.ops import delegate_report, markdown_lines

pytestmark = pytest.mark.tf_only


def test_a_flex_op_is_reported_flagged_for_the_gpu_and_not_integer_only():
    import tensorflow as tf

    cumprod = tf.function(lambda x: tf.math.cumprod(x, axis=-1), input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([cumprod.get_concrete_function()], cumprod)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    section = delegate_report(converter.convert(), full_integer=True)
    assert section["ops"] == {"FlexCumprod": 1} and section["flex_ops"] == ["FlexCumprod"]
    assert not section["gpu"]["compatible"] and [f["op"] for f in section["gpu"]["flagged"]] == ["FlexCumprod"]
    assert not section["integer_only"]["passed"] and section["integer_only"]["float_ops"] == ["FlexCumprod"]
    lines = "\n".join(markdown_lines(section))
    assert "Flex (SELECT_TF_OPS) ops: FlexCumprod" in lines and "GPU delegate (TensorFlow Analyzer): NOT compatible" in lines
