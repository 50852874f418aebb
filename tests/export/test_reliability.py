"""Bad inputs give one clear error and leave no partial artifact; nothing is overwritten silently."""
from __future__ import annotations

import numpy as np
import pytest

from keras_resnets.cli import main as cli_main
from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError, UnsupportedOperationError

pytestmark = pytest.mark.tf_only

FAST = {"eval_samples": 100, "calibration_samples": 20, "benchmark_runs": 50}


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_corrupt_and_foreign_files_are_rejected_by_name(tmp_path):
    corrupt = tmp_path / "corrupt.keras"
    corrupt.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ExportError, match="corrupt.keras is corrupt or not a Keras model"):
        export_model(corrupt, dataset="digits")
    foreign = tmp_path / "weights.h5"
    foreign.write_bytes(b"\x89HDF\r\n")
    with pytest.raises(ExportError, match=r"is not a .keras file \(suffix '.h5'\)"):
        export_model(foreign)
    assert _leftovers(tmp_path) == ["corrupt.keras", "weights.h5"]


def test_representative_set_of_the_wrong_shape_is_rejected(fresh_run, tmp_path):
    wrong = tmp_path / "wrong.npz"
    images = np.zeros((4, 8, 8, 1), np.uint8)
    np.savez(wrong, x_train=images, y_train=np.zeros(4), x_test=images, y_test=np.zeros(4))
    with pytest.raises(ExportError, match=r"training images have shape \(8, 8, 1\), the model expects \(16, 16, 1\)"):
        export_model(fresh_run, quantize="int8", dataset=str(wrong))
    assert _leftovers(fresh_run / "export") == []


def test_op_tflite_cannot_express_is_named_and_nothing_is_written(tmp_path):
    import keras
    import tensorflow as tf

    from export_helpers import write_run

    @keras.saving.register_keras_serializable(package="export_tests")
    class Determinant(keras.layers.Layer):
        def call(self, x):
            return tf.linalg.det(tf.transpose(x[:, :4, :4, :], [0, 3, 1, 2]))

    inputs = keras.Input((16, 16, 1))
    features = keras.layers.Flatten()(Determinant()(keras.layers.Conv2D(3, 3, padding="same")(inputs)))
    run = write_run(tmp_path / "det", keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(features)))
    with pytest.raises(UnsupportedOperationError, match="TFLite cannot express op.*tf.MatrixDeterminant"):
        export_model(run, **FAST)
    assert _leftovers(run / "export") == []


def test_existing_files_need_force(fresh_run):
    first = export_model(fresh_run, **FAST)
    before = first.artifact.read_bytes()
    with pytest.raises(ExportError, match="already exists; pass --force"):
        export_model(fresh_run, **FAST)
    assert first.artifact.read_bytes() == before
    assert export_model(fresh_run, force=True, **FAST).artifact.is_file()


def test_failed_verification_leaves_no_partial_artifact(fresh_run, tmp_path, monkeypatch):
    with pytest.raises(ExportError, match=r"tiny_resnet_float32 failed verification \(float32_parity\)"):
        export_model(fresh_run, output_dir=tmp_path / "out", float32_bar=0.0, **FAST)  # an unreachable bar
    assert _leftovers(tmp_path / "out") == []


def test_cli_prints_one_line_without_traceback(fresh_run, tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "missing"), "--quantize", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "Traceback" not in err
    assert cli_main(["export", str(fresh_run), "--quantize", "int8", "--eval-samples", "100",
                     "--calibration-samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "tiny_resnet_int8.tflite" in out and "drop" in out and "latency median" in out


def test_existing_artifact_is_refused_before_any_conversion_or_calibration(fresh_run, monkeypatch):
    """Issue 16, defect 10: an existing artifact is refused before the export loads data or converts."""
    from keras_resnets.export import api, convert

    export_model(fresh_run, quantize="int8", **FAST)

    def no_work(*args, **kwargs):
        raise AssertionError("conversion or calibration ran before the existing artifact was refused")

    monkeypatch.setattr(convert, "convert_saved_model", no_work)
    monkeypatch.setattr(convert, "write_saved_model", no_work)
    monkeypatch.setattr(api, "load_export_data", no_work)
    with pytest.raises(ExportError, match=r"tiny_resnet_int8\.tflite already exists; pass --force"):
        export_model(fresh_run, quantize="int8", **FAST)
    # auto may write any candidate, so an existing one is refused up front too, naming the candidates
    with pytest.raises(ExportError, match=r"already exists \(--quantize auto may write any of .*tiny_resnet_int8\b"):
        export_model(fresh_run, quantize="auto", **FAST)


def _fake_latency(medians: dict, spreads: dict):
    """TFLiteRunner.latency replaced by fixed figures per input type (float32 vs integer models)."""
    from keras_resnets.export.verify import TFLiteRunner

    def latency(self, runs=50, warmup=10):
        kind = "float" if self.input["dtype"] == np.float32 else "int8"
        median, spread = medians[kind], spreads[kind]
        return {"median_ms": median, "p10_ms": median - spread / 2, "p90_ms": median + spread / 2,
                "spread_ms": spread, "mean_ms": median, "runs": runs, "warmup": warmup, "threads": 1}

    return TFLiteRunner, latency


def test_auto_picks_the_smallest_within_budget_whatever_the_host_latency(fresh_run, monkeypatch):
    """Issue 16, defect 9: by default auto is deterministic for a model and calibration set: the smallest
    artifact within the budget, even when a larger one looks faster on this (noisy) host."""
    runner, latency = _fake_latency({"float": 0.3, "int8": 1.0}, {"float": 0.8, "int8": 0.8})
    monkeypatch.setattr(runner, "latency", latency)
    report = export_model(fresh_run, quantize="auto", **FAST).report
    passing = [c for c in report["auto"]["candidates"] if not c["failed_checks"]]
    smallest = min(passing, key=lambda c: c["size_bytes"])
    assert report["artifact"] == smallest["variant"] + ".tflite" and smallest["precision"] in ("int8", "dynamic")
    assert "smallest file within the budget" in report["auto"]["reason"]
    assert "spread" in report["auto"]["reason"] and report["latency"]["spread_ms"] == pytest.approx(0.8)
    # host latency decides only when asked, and then only beyond the measured spread
    again = export_model(fresh_run, quantize="auto", optimize_for="host-latency", force=True, **FAST).report
    assert again["artifact"] == report["artifact"] and "no variant was faster" in again["auto"]["reason"]
    runner, latency = _fake_latency({"float": 0.3, "int8": 1.0}, {"float": 0.05, "int8": 0.1})
    monkeypatch.setattr(runner, "latency", latency)
    fast = export_model(fresh_run, quantize="auto", optimize_for="host-latency", force=True, **FAST).report
    assert fast["precision"] in ("float32", "float16", "dynamic") and "faster on this host" in fast["auto"]["reason"]


def test_optimize_for_is_checked():
    with pytest.raises(ExportError, match=r"--optimize-for must be one of size, host-latency; got 'speed'"):
        export_model("unused", quantize="auto", optimize_for="speed")
    with pytest.raises(ExportError, match="--optimize-for chooses among the variants of --quantize auto"):
        export_model("unused", quantize="int8", optimize_for="host-latency")
