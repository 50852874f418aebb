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
    from keras_resnets.export import verify

    monkeypatch.setattr(verify, "FLOAT32_TOLERANCE", 0.0)  # an unreachable parity bar
    with pytest.raises(ExportError, match=r"tiny_resnet_float32 failed verification \(float32_parity\)"):
        export_model(fresh_run, output_dir=tmp_path / "out", **FAST)
    assert _leftovers(tmp_path / "out") == []


def test_cli_prints_one_line_without_traceback(fresh_run, tmp_path, capsys):
    assert cli_main(["export", str(tmp_path / "missing"), "--quantize", "int8"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "Traceback" not in err
    assert cli_main(["export", str(fresh_run), "--quantize", "int8", "--eval-samples", "100",
                     "--calibration-samples", "20"]) == 0
    out = capsys.readouterr().out
    assert "tiny_resnet_int8.tflite" in out and "drop" in out and "latency median" in out
