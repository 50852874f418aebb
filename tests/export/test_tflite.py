"""TFLite export of a small trained residual net: every precision, the parity bars, the operators."""
from __future__ import annotations

import json

import numpy as np
import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError

pytestmark = pytest.mark.tf_only

FAST = {"eval_samples": 200, "calibration_samples": 100}


@pytest.mark.parametrize("quantize,io_type", [("none", "int8"), ("float16", "int8"), ("dynamic", "int8"),
                                              ("int8", "int8"), ("int8", "uint8")])
def test_every_post_training_mode_exports_a_verified_model(fresh_run, quantize, io_type):
    result = export_model(fresh_run, quantize=quantize, io_type=io_type, **FAST)
    report = result.report
    assert result.artifact.is_file() and result.report_md.is_file() and result.metadata.is_file()
    assert all(check["passed"] for check in report["checks"]), report["checks"]
    assert {c["name"] for c in report["checks"]} >= {"builtin_ops_only", "batchnorm_folded", "accuracy_budget"}
    assert report["latency"]["runs"] >= 50 and report["latency"]["threads"] >= 1
    assert report["size_bytes"] == result.artifact.stat().st_size
    metadata = json.loads(result.metadata.read_text())
    expected_dtype = io_type if quantize == "int8" else "float32"
    assert metadata["input"]["dtype"] == expected_dtype and metadata["output"]["dtype"] == expected_dtype
    assert metadata["labels"] == [str(d) for d in range(10)]
    index = json.loads((fresh_run / "export" / "report.json").read_text())
    assert [row["artifact"] for row in index["exports"]] == [result.artifact.name]


def test_float32_matches_keras_within_1e4_and_int8_drops_at_most_one_point(fresh_run):
    float32 = export_model(fresh_run, quantize="none", **FAST).report["accuracy"]
    int8 = export_model(fresh_run, quantize="int8", **FAST).report["accuracy"]
    assert float32["max_abs_diff"] <= 1e-4
    assert float32["tflite_top1"] == float32["keras_top1"]
    assert int8["keras_top1"] > 70.0  # the fixture's model really learned the digits
    assert int8["drop_points"] <= 1.0


def test_batchnorm_folds_into_convolutions_and_only_builtin_ops_remain(fresh_run):
    ops = export_model(fresh_run, quantize="int8", **FAST).report["operators"]
    # 5 convolutions + 5 BatchNormalization in the model; one residual Add
    assert ops["counts"]["CONV_2D"] == 4 and ops["counts"]["ADD"] == 1
    assert "MUL" not in ops["counts"] and ops["builtin_only"]


def test_dilated_convolution_stays_one_op_at_batch_one_but_not_with_a_dynamic_batch(tmp_path):
    from export_helpers import small_resnet, write_run

    run = write_run(tmp_path / "dilated", small_resnet(dilation=2))
    edge = export_model(run, quantize="none", **FAST).report["operators"]
    server = export_model(run, quantize="none", dynamic_batch=True, **FAST).report
    assert edge["space_to_batch_ops"] == 0 and edge["counts"]["CONV_2D"] == 4
    assert server["operators"]["space_to_batch_ops"] == 2 and server["batch"] is None
    folded = next(c for c in server["checks"] if c["name"] == "batchnorm_folded")
    assert not folded["passed"] and not folded["required"]  # the naive conversion keeps a BN
    assert server["accuracy"]["max_abs_diff"] <= 1e-4


def test_auto_picks_the_smallest_variant_within_the_budget_and_says_why(fresh_run):
    report = export_model(fresh_run, quantize="auto", **FAST).report
    auto = report["auto"]
    assert {c["precision"] for c in auto["candidates"]} == {"float32", "float16", "dynamic", "int8"}
    chosen = next(c for c in auto["candidates"] if c["variant"] + ".tflite" == report["artifact"])
    assert not chosen["failed_checks"] and chosen["drop_points"] <= 1.0
    passing = [c for c in auto["candidates"] if not c["failed_checks"]]
    assert chosen["size_bytes"] == min(c["size_bytes"] for c in passing)
    assert auto["reason"].startswith(f"chose {chosen['variant']}") and "budget" in auto["reason"]
    if chosen["precision"] == "int8":
        assert report["sensitivity"]["layers"]  # an int8 choice ships its sensitivity report


def test_raw_pixel_model_normalises_itself(fresh_run):
    from export_helpers import tflite_outputs
    from keras_resnets.data import load_dataset

    result = export_model(fresh_run, quantize="none", include_preprocessing=True, **FAST)
    config = json.loads((fresh_run / "config.json").read_text())
    mean, std = (np.asarray(config["normalization"][k], np.float32) for k in ("mean", "std"))
    images, _ = next(iter(load_dataset("digits", image_size=(16, 16), channels=1).test))
    pixels = images.numpy()[:8] * std + mean
    import keras

    expected = keras.saving.load_model(fresh_run / "best.keras").predict(images.numpy()[:8], verbose=0)
    np.testing.assert_allclose(tflite_outputs(result.artifact, pixels), expected, atol=1e-4)
    assert json.loads(result.metadata.read_text())["input"]["pixels"] == "raw"


def test_saved_model_serves_probabilities_with_a_named_signature(fresh_run):
    import tensorflow as tf

    result = export_model(fresh_run, to="saved_model", eval_samples=64)
    serve = tf.saved_model.load(str(result.artifact)).signatures["serving_default"]
    outputs = serve(images=tf.zeros([1, 16, 16, 1]))["probabilities"].numpy()
    assert outputs.shape == (1, 10) and abs(outputs.sum() - 1.0) < 1e-5
    assert result.report["checks"][0]["passed"]


def test_onnx_export_is_checked_with_onnxruntime(fresh_run):
    result = export_model(fresh_run, to="onnx", include_preprocessing=True, eval_samples=64)
    report = result.report
    assert result.artifact.name == "tiny_resnet_float32-rawpixels.onnx" and result.artifact.exists()
    assert report["format"] == "onnx" and report["checks"][0]["passed"], report["checks"]
    assert report["accuracy"]["prediction_agreement"] == 100.0
    with pytest.raises(ExportError, match=r"^--to onnx exports float32 only; got quantize='int8'"):
        export_model(fresh_run, to="onnx", quantize="int8")
    assert report["onnx_ops"]["ops"]["Conv"] == 4 and report["onnx_ops"]["undefined_ops"] == []
    assert "## Ops" in result.report_md.read_text()


def test_onnx_export_refuses_a_model_with_an_op_onnx_does_not_define(tmp_path):
    """tf2onnx leaves TensorFlow's ``Erfinv`` in the graph under its own name; onnxruntime cannot load that."""
    import keras

    @keras.saving.register_keras_serializable(package="tests")
    class InverseErf(keras.layers.Layer):
        def call(self, x):
            return keras.ops.erfinv(keras.ops.tanh(x) * 0.5)

    inputs = keras.Input((16, 16, 1))
    x = keras.layers.GlobalAveragePooling2D()(InverseErf()(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "erfinv.keras")
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"^ONNX export of erfinv failed: the converter left op\(s\) that ONNX "
                                          r"does not define: Erfinv; nothing was written$"):
        export_model(tmp_path / "erfinv.keras", to="onnx", dataset="digits", output_dir=out, eval_samples=32)
    assert not out.exists() or not any(out.iterdir())
