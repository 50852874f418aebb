"""Artifacts load in MediaPipe Tasks' ImageClassifier, classify like our own verification, and name the classes.

A tiny residual net on the digits as RGB images (16x16x3) goes through every export mode with
``--include-preprocessing`` (pixel input: float32 with identity normalisation, uint8 for the full
integer modes) and once with normalised float input. MediaPipe runs the files as written, with
no extra file, on held-out images; its top-1 must match ``TFLiteRunner``'s on >= 99 % of them.
"""
from __future__ import annotations

import numpy as np
import pytest

from export_helpers import small_resnet, write_run
from keras_resnets.data import load_dataset
from keras_resnets.export import export_model, load_source
from keras_resnets.export.datasets import load_export_data
from keras_resnets.export.metadata import read_metadata
from keras_resnets.export.optimize import FineTuneOptions
from keras_resnets.export.verify import TFLiteRunner
from mediapipe_helpers import mediapipe_results, raw_pixels

pytestmark = pytest.mark.tf_only

RGB = (16, 16, 3)
IMAGES = 100
FAST = {"calibration_samples": 64, "eval_samples": 200, "benchmark_runs": 1, "accuracy_budget": 100.0}
QUICK_QAT = FineTuneOptions(epochs=1, max_images=256, batch_size=32)


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """A tiny residual net trained briefly on the digits as RGB images."""
    import keras

    keras.utils.set_random_seed(0)
    data = load_dataset("digits", batch_size=64, image_size=RGB[:2], channels=3)
    model = small_resnet(input_shape=RGB)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy")
    model.fit(data.train(8), steps_per_epoch=data.steps_per_epoch, epochs=6, verbose=0, shuffle=False)
    return write_run(tmp_path_factory.mktemp("runs") / "digits_rgb", model, epochs=6, input_shape=RGB)


def test_every_export_mode_classifies_in_mediapipe_like_our_verification_and_names_the_classes(rgb_run, tmp_path):
    modes = [{"quantize": "none"}, {"quantize": "float16"}, {"quantize": "dynamic"}, {"quantize": "int8"},
             {"quantize": "qat", "fine_tune": QUICK_QAT}]
    artifacts = [export_model(rgb_run, include_preprocessing=True, **{**FAST, **mode}) for mode in modes]
    int8 = artifacts[3].report
    worst = int8["sensitivity"]["layers"][0]["layer"]
    artifacts.append(export_model(rgb_run, include_preprocessing=True, quantize="int8", keep_float=worst, **FAST))
    artifacts.append(export_model(rgb_run, quantize="none", **FAST))  # normalised input: one mean/std (grey digits)
    assert [a.artifact.name for a in artifacts] == [
        "tiny_resnet_float32-rawpixels.tflite", "tiny_resnet_float16-rawpixels.tflite",
        "tiny_resnet_dynamic-rawpixels.tflite", "tiny_resnet_int8-uint8io-rawpixels.tflite",
        "tiny_resnet_qat-int8-uint8io-rawpixels.tflite", "tiny_resnet_int8-selective-uint8io-rawpixels.tflite",
        "tiny_resnet_float32.tflite"]
    source = load_source(rgb_run)
    data = load_export_data(source, calibration_samples=1, eval_samples=IMAGES)
    pixels = raw_pixels(data, IMAGES)
    results = mediapipe_results("classification", pixels, [a.artifact for a in artifacts], tmp_path)
    refused = {a.artifact.name: results[str(a.artifact)] for a in artifacts if "error" in results[str(a.artifact)]}
    assert not refused, refused
    for result in artifacts:
        report = result.report
        assert report["standard_metadata"]["mediapipe"] == "loadable", report["standard_metadata"]
        raw = report["input_pixels"] == "raw"
        ours = TFLiteRunner(result.artifact).predict(pixels.astype(np.float32) if raw else data.eval_images[:IMAGES])
        top1 = ours.argmax(-1)
        theirs = results[str(result.artifact)]
        agreement = np.mean(np.array([r["index"] for r in theirs]) == top1)
        assert agreement >= 0.99, (result.artifact.name, agreement)
        assert [r["name"] for r in theirs] == [source.class_names[i] for i in top1]
    assert artifacts[3].report["io"] == {"input": "uint8", "output": "uint8"}
    assert int8["delegates"]["integer_only"]["passed"], int8["delegates"]
    selective = artifacts[5].report["delegates"]["integer_only"]
    assert not selective["passed"] and selective["float_ops"], selective
    gpu = artifacts[0].report["delegates"]["gpu"]
    assert gpu["compatible"] and gpu["flagged"] == [], gpu
    for result in artifacts:
        assert result.report["delegates"]["flex_ops"] == []
        assert "## Delegates and ops" in result.report_md.read_text()
    decoded = read_metadata(artifacts[-1].artifact.read_bytes())  # normalised input: the run's mean and std
    assert decoded["files"] == {"labels.txt": "".join(f"{name}\n" for name in source.class_names)}
    assert decoded["output_files"] == ["labels.txt"] and decoded["min_parser_version"] == "1.0.0"
    np.testing.assert_allclose(decoded["mean"], source.mean, rtol=1e-6)
    np.testing.assert_allclose(decoded["std"], source.std, rtol=1e-6)


def test_grayscale_models_are_exported_without_metadata_and_say_why(fresh_run):
    result = export_model(fresh_run, quantize="none", calibration_samples=8, eval_samples=32, benchmark_runs=1)
    section = result.report["standard_metadata"]
    assert not section["standard"]
    assert section["reason"] == (
        "standard image metadata describes RGB input; this model takes 1 channel(s) (MediaPipe and the Support "
        "Library feed 3-channel images): train on RGB data (channels=3) for artifacts that image clients load")
    assert read_metadata(result.artifact.read_bytes()) == {}
