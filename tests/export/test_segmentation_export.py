"""Segmentation models through export: a tiny dilated ResNet-18 (output stride 8) on the generated shapes.

The run directory follows docs/CONTRACTS.md; the checks are the classifier ones (parity, builtin
operators, folded BatchNormalization, dilated convolutions as single CONV_2D ops) with mean IoU in
place of top-1, plus the edge runner's label maps without TensorFlow.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError
from keras_resnets.runs import RunConfig

pytestmark = pytest.mark.tf_only

SIZE = 32
SHAPES = {"num_train": 384, "num_validation": 64, "max_shapes": 2}
FAST = {"calibration_samples": 32, "benchmark_runs": 50}


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory):
    """A run directory with a narrow dilated_resnet18_seg (widths 8..64, stride 8) trained 10 short epochs."""
    import keras

    import keras_resnets
    from keras_resnets.data import registry

    keras.utils.set_random_seed(0)
    data = registry.load("shapes", SHAPES, image_size=(SIZE, SIZE), batch_size=16, seed=0)
    info = data.info
    model_kwargs = {"context": None, "output_stride": 8, "backbone_kwargs": {"stage_widths": [8, 16, 32, 64]}}
    model = keras_resnets.create_model("dilated_resnet18_seg", input_shape=info.image_shape, classes=info.num_classes,
                                       **model_kwargs)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255))
    model.fit(data.train(10), epochs=10, steps_per_epoch=data.steps_per_epoch, shuffle=False, verbose=0)
    run = tmp_path_factory.mktemp("runs") / "shapes"
    run.mkdir()
    model.save(run / "best.keras")
    RunConfig(**info.to_config(), task="segmentation", model="dilated_resnet18_seg", model_kwargs=model_kwargs,
              dataset_kwargs=SHAPES, classifier_activation=None, epochs=10, batch_size=16, lr=0.01,
              schedule="constant", augment="none", seed=0, keras_resnets_version="0.1.0").save(run)
    return run


@pytest.fixture(scope="module")
def float32_export(seg_run):
    return export_model(seg_run, quantize="none", **FAST)


def _held_out(count):
    """Raw pixels, normalised images and masks of the run's test split (the one metrics.json reports)."""
    from keras_resnets.data import registry

    data = registry.load("shapes", SHAPES, batch_size=count, image_size=(SIZE, SIZE), seed=0)
    info = data.info
    images, masks = (t.numpy() for t in next(iter(data.test)))
    pixels = np.clip(np.rint(images * np.asarray(info.std) + np.asarray(info.mean)), 0, 255).astype(np.uint8)
    return pixels, images, masks


def test_float32_export_matches_keras_and_keeps_dilated_convolutions_single(float32_export, seg_run):
    report = float32_export.report
    accuracy, ops = report["accuracy"], report["operators"]
    assert report["task"] == "segmentation" and accuracy["metric"] == "miou"
    assert all(check["passed"] for check in report["checks"]), report["checks"]
    names = {c["name"] for c in report["checks"]}
    assert names >= {"builtin_ops_only", "batchnorm_folded", "dilated_conv_single_op", "float32_parity",
                     "accuracy_budget"}
    assert accuracy["max_abs_diff"] <= 1e-4 and accuracy["prediction_agreement"] > 99.9
    assert accuracy["samples"] == SHAPES["num_validation"]
    assert accuracy["pixels"] == SHAPES["num_validation"] * SIZE ** 2  # shapes masks label every pixel
    assert abs(accuracy["tflite_miou"] - accuracy["keras_miou"]) < 0.5
    assert accuracy["keras_miou"] > 25.0  # above background-only (about 22): the model learned something
    assert ops["space_to_batch_ops"] == 0 and ops["dilated_convolutions"] >= 4  # stages 3 and 4 dilated
    assert ops["builtin_only"] and "MUL" not in ops["counts"] and ops["counts"]["RESIZE_BILINEAR"] == 1
    metadata = json.loads(float32_export.metadata.read_text())
    assert metadata["task"] == "segmentation"
    assert metadata["labels"] == ["background", "circle", "rectangle", "triangle"]
    assert (metadata["output"]["height"], metadata["output"]["width"], metadata["output"]["classes"]) == (SIZE, SIZE, 4)
    assert "mIoU" in float32_export.report_md.read_text()
    index = json.loads((seg_run / "export" / "report.json").read_text())["exports"]
    assert index[0]["task"] == "segmentation" and index[0]["miou"] == accuracy["tflite_miou"]


def test_mean_iou_is_the_metric_the_training_reports(float32_export, seg_run):
    import keras

    from keras_resnets.metrics import MeanIoU

    _, images, masks = _held_out(SHAPES["num_validation"])
    metric = MeanIoU(4)
    metric.update_state(masks, keras.saving.load_model(seg_run / "best.keras").predict(images, verbose=0))
    assert abs(100.0 * float(metric.result()) - float32_export.report["accuracy"]["keras_miou"]) < 1e-3


def test_int8_export_reports_the_miou_drop(seg_run):
    report = export_model(seg_run, quantize="int8", accuracy_budget=5.0, **FAST).report
    accuracy = report["accuracy"]
    assert report["precision"] == "int8" and report["io"] == {"input": "int8", "output": "int8"}
    assert accuracy["drop_points"] == pytest.approx(accuracy["keras_miou"] - accuracy["tflite_miou"])
    assert accuracy["prediction_agreement"] > 90.0
    budget = next(c for c in report["checks"] if c["name"] == "accuracy_budget")
    assert budget["passed"] and budget["detail"].startswith("mIoU drop")
    assert report["operators"]["space_to_batch_ops"] == 0


def test_auto_applies_the_budget_to_the_miou_drop(seg_run, tmp_path, capsys):
    from keras_resnets.cli import main as cli_main

    out = tmp_path / "auto"
    assert cli_main(["export", str(seg_run), "--quantize", "auto", "--accuracy-budget", "0", "--output", str(out),
                     "--calibration-samples", "32"]) == 0
    printed = capsys.readouterr().out
    assert "mIoU" in printed and "pixel accuracy" in printed and "chose dilated_resnet18_seg_" in printed
    report = json.loads(next(out.glob("*.report.json")).read_text())
    candidates = report["auto"]["candidates"]
    post_training = [c for c in candidates if c["precision"] != "int8-selective"]
    assert [c["precision"] for c in post_training] == ["float32", "float16", "dynamic", "int8"]
    # selective int8 (--keep-float auto) is tried exactly when full int8 misses the budget
    int8_missed = "accuracy_budget" in post_training[-1]["failed_checks"]
    assert (len(candidates) == 5) == int8_missed
    for candidate in post_training:  # a zero budget rejects exactly the variants whose mIoU dropped
        assert ("accuracy_budget" in candidate["failed_checks"]) == (candidate["drop_points"] > 0)
    chosen = next(c for c in candidates if c["variant"] + ".tflite" == report["artifact"])
    assert not chosen["failed_checks"] and "mIoU drop" in report["auto"]["reason"]


def test_dynamic_batch_export_is_verified_and_reports_space_to_batch(seg_run):
    report = export_model(seg_run, quantize="none", dynamic_batch=True, **FAST).report
    assert report["batch"] is None and report["accuracy"]["max_abs_diff"] <= 1e-4
    assert report["operators"]["space_to_batch_ops"] > 0  # the naive lowering of the dilated convolutions
    assert "dilated_conv_single_op" not in {c["name"] for c in report["checks"]}
    assert all(c["passed"] for c in report["checks"] if c["required"])


def test_saved_model_serves_per_pixel_probabilities(seg_run, tmp_path):
    import tensorflow as tf

    result = export_model(seg_run, to="saved_model", output_dir=tmp_path / "served")
    accuracy = result.report["accuracy"]
    assert result.report["task"] == "segmentation" and accuracy["metric"] == "miou"
    assert accuracy["max_abs_diff"] <= 1e-4 and abs(accuracy["exported_miou"] - accuracy["keras_miou"]) < 0.5
    serve = tf.saved_model.load(str(result.artifact)).signatures["serving_default"]
    outputs = serve(images=tf.zeros([1, SIZE, SIZE, 3]))["probabilities"].numpy()
    assert outputs.shape == (1, SIZE, SIZE, 4) and np.allclose(outputs.sum(-1), 1.0, atol=1e-5)


def test_edge_runner_writes_label_maps_without_tensorflow(float32_export, seg_run, tmp_path):
    import keras

    from test_runner import BLOCK_TENSORFLOW, RUNNER

    pixels, images, _ = _held_out(8)
    np.save(tmp_path / "batch.npy", pixels)
    proc = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, str(RUNNER), str(float32_export.artifact),
                           str(tmp_path / "batch.npy"), "--output-dir", str(tmp_path / "masks"), "--json",
                           "--benchmark", "10"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["task"] == "segmentation" and len(result["predictions"]) == 8
    assert result["latency"]["runs"] == 10 and result["latency"]["median_ms"] > 0
    label_maps = np.stack([np.load(p["label_map"]) for p in result["predictions"]])
    expected = np.argmax(keras.saving.load_model(seg_run / "best.keras").predict(images, verbose=0), -1)
    assert label_maps.shape == (8, SIZE, SIZE) and np.mean(label_maps == expected) > 0.99
    assert all(open(p["image"], "rb").read(8) == b"\x89PNG\r\n\x1a\n" for p in result["predictions"])
    assert abs(sum(result["predictions"][0]["classes"].values()) - 1.0) < 1e-6


def test_masks_of_the_wrong_shape_are_rejected_and_nothing_is_written(seg_run, tmp_path):
    wrong = tmp_path / "wrong.npz"
    images = np.zeros((4, SIZE, SIZE, 3), np.uint8)
    np.savez(wrong, x_train=images, y_train=np.zeros((4, SIZE, SIZE)), x_test=images, y_test=np.zeros(4))
    out = tmp_path / "out"
    with pytest.raises(ExportError, match=r"held-out masks have shape \(4,\); a segmentation model with input "
                                          r"\(32, 32, 3\) needs masks \(n, 32, 32\)") as err:
        export_model(seg_run, dataset=str(wrong), output_dir=out, **FAST)
    assert "\n" not in str(err.value) and not out.exists()


def test_pruning_and_qat_fine_tune_segmentation_models(seg_run, tmp_path):
    """The tf_keras bridge, per-pixel fine-tuning (label 255 ignored), 50% pruning and QAT, then int8."""
    from keras_resnets.export.optimize import FineTuneOptions

    result = export_model(seg_run, quantize="qat", prune=0.5, output_dir=tmp_path / "out", accuracy_budget=100.0,
                          eval_samples=32, fine_tune=FineTuneOptions(epochs=1, max_images=64, batch_size=16), **FAST)
    report, optimization = result.report, result.report["optimization"]
    assert report["task"] == "segmentation" and report["accuracy"]["metric"] == "miou"
    assert optimization["bridge_max_abs_diff"] <= 1e-5
    assert optimization["fine_tune"]["images"] == 64
    assert optimization["pruning"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert optimization["qat"]["scheme"] == "Default8BitPrunePreserveQuantizeScheme"
    assert optimization["fine_tuned_keras_metric"] == "pixel_accuracy" and optimization["fine_tuned_keras"] > 50.0
    assert report["io"] == {"input": "int8", "output": "int8"}
    assert all(check["passed"] for check in report["checks"]), report["checks"]
    assert report["operators"]["space_to_batch_ops"] == 0 and "MUL" not in report["operators"]["counts"]
    assert result.artifact.name == "dilated_resnet18_seg_qat-int8-pruned50.tflite"


def test_outputs_neither_classes_nor_pixel_classes_are_refused_in_one_line(tmp_path):
    import keras

    inputs = keras.Input((SIZE, SIZE, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, strides=2, padding="same")(inputs))
    model.save(tmp_path / "half.keras")
    with pytest.raises(ExportError, match=r"classifiers with output \(batch, classes\) and segmentation models with "
                                          r"output \(batch, 32, 32, classes\); this model outputs \(None, 16, 16, 4\)"):
        export_model(tmp_path / "half.keras", dataset="shapes")


def test_mediapipe_segmenter_reads_the_metadata_and_agrees_on_the_category_mask(seg_run, tmp_path):
    from keras_resnets.export import load_source
    from keras_resnets.export.datasets import load_export_data
    from keras_resnets.export.verify import TFLiteRunner
    from mediapipe_helpers import mediapipe_results, raw_pixels

    result = export_model(seg_run, quantize="int8", include_preprocessing=True, output_dir=tmp_path, **FAST,
                          accuracy_budget=100.0)
    assert result.report["io"] == {"input": "uint8", "output": "uint8"}
    assert result.report["standard_metadata"]["mediapipe"] == "loadable"
    source = load_source(seg_run)
    pixels = raw_pixels(load_export_data(source, calibration_samples=1, eval_samples=8), 8)
    ours = TFLiteRunner(result.artifact).predict(pixels.astype(np.float32)).argmax(-1)
    theirs = mediapipe_results("segmentation", pixels, [result.artifact], tmp_path)[str(result.artifact)]
    assert "error" not in theirs, theirs
    assert theirs["labels"] == list(source.class_names)
    masks = np.array([image["mask"] for image in theirs["images"]])
    assert masks.shape == ours.shape
    assert np.mean(masks == ours) >= 0.99


def test_float32_parity_bar_is_the_tasks_and_a_miss_says_what_to_do(float32_export, seg_run):
    """Per-pixel maps: a correct float32 conversion of a trained dilated_resnet18_seg (64 x 64 shapes)
    differs from Keras by up to 2.8e-4, above the per-image bar 1e-4; the segmentation bar is 1e-3,
    and a miss names the option that accepts a larger difference."""
    from keras_resnets.export.datasets import load_export_data
    from keras_resnets.export.graph import layer_graph
    from keras_resnets.export.source import load_source
    from keras_resnets.export.verify import TFLiteRunner, verify_tflite

    source = load_source(seg_run)
    data = load_export_data(source, calibration_samples=1, eval_samples=8)
    runner = TFLiteRunner(float32_export.artifact)
    outputs = runner.predict(data.eval_images)
    signs = np.where(np.arange(outputs.size).reshape(outputs.shape) % 2 == 0, 1.0, -1.0).astype(np.float32)
    common = dict(graph=layer_graph(source.model), precision="float32", images=data.eval_images,
                  labels=data.eval_labels, preprocessing=False, accuracy_budget=1.0, runs=1, task="segmentation")
    section, failed = verify_tflite(runner, reference=outputs + 2.8e-4 * signs, **common)
    assert "float32_parity" not in failed, section["checks"]
    section, failed = verify_tflite(runner, reference=outputs + 2.5e-3 * signs, **common)
    parity = next(c for c in section["checks"] if c["name"] == "float32_parity")
    assert failed == ["float32_parity"] and "--float32-bar 0.003" in parity["detail"]


def test_export_verifies_on_the_test_split_and_calibrates_in_training_order(seg_run):
    """The held-out images are the test split ``metrics.json`` reports, the calibration images the
    training pipeline's first batch, both through the dataset registry with the run's options."""
    from keras_resnets.data import registry
    from keras_resnets.export.datasets import load_export_data
    from keras_resnets.export.source import load_source

    data = load_export_data(load_source(seg_run), calibration_samples=8, eval_samples=16)
    pipelines = registry.load("shapes", SHAPES, batch_size=8, image_size=(SIZE, SIZE), seed=0)
    test_images, test_masks = (t.numpy() for t in next(iter(pipelines.test.unbatch().batch(16))))
    first_images, _ = (t.numpy() for t in next(iter(pipelines.train(1))))
    np.testing.assert_array_equal(data.eval_labels, test_masks)
    np.testing.assert_allclose(data.eval_images, test_images, atol=1e-5)
    np.testing.assert_allclose(data.calibration, first_images, atol=1e-5)
