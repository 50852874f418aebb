"""Quantization-aware training of the Keras 3 model itself (no tf_keras bridge) to a full-int8 TFLite model."""
from __future__ import annotations

import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError
from keras_resnets.export.optimize import FineTuneOptions

pytestmark = pytest.mark.tf_only

QUICK = FineTuneOptions(epochs=1, max_images=256, batch_size=32, qat_path="keras")
FAST = {"eval_samples": 200, "calibration_samples": 64}


def test_keras3_qat_gives_full_int8_matching_the_keras_qat_model_within_half_a_point(fresh_run):
    result = export_model(fresh_run, quantize="qat", fine_tune=QUICK, **FAST)
    report = result.report
    assert result.artifact.name == "tiny_resnet_qatk3-int8.tflite"
    optimization = report["optimization"]
    assert optimization["path"] == "keras"
    assert optimization["quantized_layers"] == 5 and optimization["folded_batchnorms"] == 4
    parity = next(c for c in report["checks"] if c["name"] == "qat_parity")
    assert parity["passed"] and abs(report["accuracy"]["tflite_top1"] - optimization["fine_tuned_keras"]) <= 0.5
    # full integer and the same operators as a post-training int8 export: BN folded, no requantization
    assert report["io"] == {"input": "int8", "output": "int8"}
    assert report["operators"]["counts"] == {"ADD": 1, "CONV_2D": 4, "FULLY_CONNECTED": 1, "MEAN": 1, "SOFTMAX": 1}
    assert report["sensitivity"]["layers"] and "Keras 3 QAT (no bridge)" in result.report_md.read_text()


def test_keras3_qat_path_is_checked(fresh_run):
    with pytest.raises(ExportError, match=r"--qat-path must be one of bridge, keras; got 'tfmot'"):
        export_model(fresh_run, quantize="qat", fine_tune=FineTuneOptions(qat_path="tfmot"))
    with pytest.raises(ExportError, match="--qat-path keras applies to --quantize qat without --prune"):
        export_model(fresh_run, quantize="qat", prune=0.5, fine_tune=QUICK)
