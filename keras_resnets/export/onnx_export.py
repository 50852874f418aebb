"""``--to onnx``: Keras' own ONNX export (``model.export(format="onnx")``, tf2onnx on the TensorFlow
backend), checked with ``onnxruntime`` against the Keras model on the held-out images.

The artifact takes what the TFLite and SavedModel artifacts take (normalised images, or raw pixels
0..255 with ``--include-preprocessing``), float32, a dynamic batch, and outputs probabilities (a
softmax is appended to models that output logits).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from keras_resnets.export import report as report_lib
from keras_resnets.export.datasets import load_export_data
from keras_resnets.export.errors import ExportError, UnsupportedOperationError, VerificationError
from keras_resnets.export.verify import FLOAT32_TOLERANCE, compare_predictions


def export_onnx(src, out_dir: Path, *, force: bool, dataset, preprocessing: bool, eval_samples: int | None,
                refuse_overwrite) -> dict:
    """Write ``<model>_float32[-rawpixels].onnx`` and its report; returns the ``ExportResult`` fields.

    Raises:
        ExportError: tf2onnx/onnxruntime are missing, or the run has no data to check against.
        UnsupportedOperationError: the converter cannot express the model (one line, its reason).
        VerificationError: onnxruntime's outputs differ from Keras' beyond the float32 bar.
    """
    try:
        import onnxruntime
        import tf2onnx  # noqa: F401  (Keras' ONNX export on the TensorFlow backend)
    except ImportError as err:
        raise ExportError(f"--to onnx needs tf2onnx and onnxruntime (requirements.lock): {err}") from None
    name = f"{src.name}_float32{'-rawpixels' if preprocessing else ''}"
    files = [f"{name}.onnx", f"{name}.report.json", f"{name}.report.md"]
    out_dir.mkdir(parents=True, exist_ok=True)
    refuse_overwrite(out_dir, files, force)
    if not (dataset or src.config.get("dataset")):
        raise ExportError(f"{src.model_path} has no run config naming its dataset; pass --dataset to check the "
                          "ONNX artifact against the Keras model")
    data = load_export_data(src, dataset, calibration_samples=1, eval_samples=eval_samples or 256)
    inputs = data.model_inputs(data.eval_images, preprocessing).astype(np.float32)
    model = _serving_model(src, preprocessing)
    reference = np.asarray(model.predict(inputs, verbose=0, batch_size=64))
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        try:
            model.export(str(staging / files[0]), format="onnx", verbose=False)
        except Exception as err:  # tf2onnx's errors carry the op it could not express
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise UnsupportedOperationError(f"ONNX export of {src.name} failed: {first[:300]}") from None
        session = onnxruntime.InferenceSession(str(staging / files[0]), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        exported = np.concatenate([session.run(None, {feed: inputs[i:i + 64]})[0] for i in range(0, len(inputs), 64)])
        accuracy = compare_predictions(src.task, exported, reference, data.eval_labels, prefix="exported")
        max_abs = accuracy["max_abs_diff"]
        check = {"name": "float32_parity", "passed": max_abs <= FLOAT32_TOLERANCE,
                 "detail": f"onnxruntime vs Keras: max abs output difference {max_abs:.3g} (bar {FLOAT32_TOLERANCE:g})"}
        if not check["passed"]:
            raise VerificationError(f"{name} failed verification: {check['detail']}; nothing was written")
        report = {"artifact": files[0], "source": str(src.model_path), "format": "onnx", "task": src.task,
                  "precision": "float32", "batch": None, "input_pixels": "raw" if preprocessing else "normalized",
                  "size_bytes": (staging / files[0]).stat().st_size, "labels": list(src.class_names),
                  "runtime": f"onnxruntime {onnxruntime.__version__}", "accuracy": accuracy, "checks": [check]}
        report_lib.write_json(staging / files[1], report)
        (staging / files[2]).write_text(report_lib.markdown_report(report))
        for item in files:
            (staging / item).replace(out_dir / item)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report_lib.write_index(out_dir)
    return {"artifact": out_dir / files[0], "report_json": out_dir / files[1], "report_md": out_dir / files[2],
            "metadata": None, "report": report}


def _serving_model(src, preprocessing: bool):
    """The Keras model as served: optional in-graph normalisation in front, probabilities out."""
    import keras

    if not preprocessing and src.classifier_activation is not None:
        return src.model
    images = keras.Input(src.input_shape, name="images")
    x = images
    if preprocessing:
        x = (x - np.asarray(src.mean, np.float32)) / np.asarray(src.std, np.float32)
    y = src.model(x)
    if src.classifier_activation is None:
        y = keras.layers.Softmax(axis=-1)(y)
    return keras.Model(images, y)
