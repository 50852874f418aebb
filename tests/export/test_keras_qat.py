"""Quantization-aware training of the Keras 3 model itself (no tf_keras bridge) to a full-int8 TFLite model."""
from __future__ import annotations

import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError
from keras_resnets.export.optimize import FineTuneOptions

pytestmark = pytest.mark.tf_only

QUICK = FineTuneOptions(epochs=1, max_images=256, batch_size=32, qat_path="keras")
FAST = {"eval_samples": 200, "calibration_samples": 64}


def test_keras3_qat_gives_full_int8_matching_the_keras_qat_model(fresh_run):
    result = export_model(fresh_run, quantize="qat", fine_tune=QUICK, **FAST)
    report = result.report
    assert result.artifact.name == "tiny_resnet_qatk3-int8.tflite"
    optimization = report["optimization"]
    assert optimization["path"] == "keras"
    assert optimization["quantized_layers"] == 5 and optimization["folded_batchnorms"] == 4
    parity = next(c for c in report["checks"] if c["name"] == "qat_parity")
    assert parity["passed"], parity["detail"]
    # full integer and the same operators as a post-training int8 export: BN folded, no requantization
    assert report["io"] == {"input": "int8", "output": "int8"}
    assert report["operators"]["counts"] == {"ADD": 1, "CONV_2D": 4, "FULLY_CONNECTED": 1, "MEAN": 1, "SOFTMAX": 1}
    assert report["sensitivity"]["layers"] and "Keras 3 QAT (no bridge)" in result.report_md.read_text()


def test_keras3_qat_path_is_checked(fresh_run):
    with pytest.raises(ExportError, match=r"--qat-path must be one of bridge, keras; got 'tfmot'"):
        export_model(fresh_run, quantize="qat", fine_tune=FineTuneOptions(qat_path="tfmot"))
    with pytest.raises(ExportError, match="--qat-path keras applies to --quantize qat without --prune"):
        export_model(fresh_run, quantize="qat", prune=0.5, fine_tune=QUICK)


def test_qat_parity_excuses_near_ties_only():
    import numpy as np

    from keras_resnets.export.job import check_qat_parity

    step = 1 / 256
    # image 0: decisive (margin 0.2), image 1: a near tie (margin 1 step); 100 decisive agreeing images
    qat = np.array([[0.6, 0.4, 0.0], [0.5 + step / 2, 0.5 - step / 2, 0.0]] + [[0.1, 0.9, 0.0]] * 100)
    tie_flipped = qat.copy()
    tie_flipped[1] = [0.49, 0.51, 0.0]
    section = {"accuracy": {"tflite_top1": 50.0}, "checks": []}
    assert check_qat_parity(section, {"fine_tuned_keras": 50.0}, qat, tie_flipped, step) == []
    assert section["accuracy"]["qat_agreement"]["disagree_near_tie"] == 1
    decisive_flipped = tie_flipped.copy()
    decisive_flipped[0] = [0.4, 0.6, 0.0]
    section = {"accuracy": {"tflite_top1": 50.0}, "checks": []}
    assert check_qat_parity(section, {"fine_tuned_keras": 50.0}, qat, decisive_flipped, step) == ["qat_parity"]
    assert "on 0.99% of the 101 images" in section["checks"][0]["detail"]
