"""``--to onnx``: Keras' own ONNX export (``model.export(format="onnx")``, tf2onnx on the TensorFlow
backend), checked with ``onnxruntime`` against the Keras model on the held-out images.

The artifact takes what the TFLite and SavedModel artifacts take (normalised images, or raw pixels
0..255 with ``--include-preprocessing``), float32, a dynamic batch, and outputs probabilities (a
softmax is appended to models that output logits).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_resnets.export import ops as ops_report, report as report_lib
from keras_resnets.export.errors import ExportError, UnsupportedOperationError, VerificationError
from keras_resnets.export.publish import ExportResult, Staging, refuse_overwrite
from keras_resnets.export.verify import compare_predictions, float32_parity_check


def export_onnx(src, name: str, out_dir: Path, force: bool, data, preprocessing: bool,
                float32_bar: float) -> ExportResult:
    """Write, check with onnxruntime and publish ``<name>.onnx`` and its report.

    ``data``: the :class:`~keras_resnets.export.datasets.ExportData` to check on (``None``: refused,
    a bare ``.keras`` file must name its dataset).

    Raises:
        ExportError: tf2onnx/onnxruntime are missing, or there is no data to check against.
        UnsupportedOperationError: the converter cannot express the model, or left ops in the file that
            ONNX does not define (one line, naming them).
        VerificationError: onnxruntime's outputs differ from Keras' beyond the float32 bar.
    """
    try:
        import onnxruntime
        import tf2onnx  # noqa: F401  (Keras' ONNX export on the TensorFlow backend)
    except ImportError as err:
        raise ExportError(f"--to onnx needs tf2onnx and onnxruntime (requirements.lock): {err}") from None
    files = [f"{name}.onnx", f"{name}.report.json", f"{name}.report.md"]
    refuse_overwrite(out_dir, files, force)
    if data is None:
        raise ExportError(f"{src.model_path} has no run config naming its dataset; pass --dataset to check the "
                          "ONNX artifact against the Keras model")
    inputs = data.model_inputs(data.eval_images, preprocessing).astype(np.float32)
    model = _serving_model(src, preprocessing)
    reference = np.asarray(model.predict(inputs, verbose=0, batch_size=64))
    with Staging(out_dir, name) as staging:
        try:
            model.export(str(staging.path / files[0]), format="onnx", verbose=False)
        except Exception as err:  # tf2onnx's errors carry the op it could not express
            first = next((line for line in str(err).splitlines() if line.strip()), type(err).__name__)
            raise UnsupportedOperationError(f"ONNX export of {src.name} failed: {first[:300]}") from None
        operators = ops_report.onnx_op_report(staging.path / files[0])
        if operators["undefined_ops"]:
            raise UnsupportedOperationError(
                f"ONNX export of {src.name} failed: the converter left op(s) that ONNX does not define: "
                f"{', '.join(operators['undefined_ops'])}; nothing was written")
        session = onnxruntime.InferenceSession(str(staging.path / files[0]), providers=["CPUExecutionProvider"])
        feed = session.get_inputs()[0].name
        exported = np.concatenate([session.run(None, {feed: inputs[i:i + 64]})[0] for i in range(0, len(inputs), 64)])
        accuracy = compare_predictions(src.task, exported, reference, data.eval_labels, prefix="exported")
        check = float32_parity_check(accuracy["max_abs_diff"], float32_bar)
        check["detail"] = "onnxruntime vs Keras: " + check["detail"]
        if not check["passed"]:
            raise VerificationError(f"{name}.onnx failed verification: {check['detail']}; nothing was written")
        report = {"artifact": files[0], "source": str(src.model_path), "format": "onnx", "task": src.task.name,
                  "precision": "float32", "batch": None, "input_pixels": "raw" if preprocessing else "normalized",
                  "size_bytes": (staging.path / files[0]).stat().st_size, "labels": list(src.class_names),
                  "runtime": f"onnxruntime {onnxruntime.__version__}", "accuracy": accuracy, "checks": [check],
                  "onnx_ops": operators}
        staging.write({files[1]: report, files[2]: report_lib.markdown_report(report)})
        staging.publish(files, force)
    return ExportResult(artifact=out_dir / files[0], report_json=out_dir / files[1], report_md=out_dir / files[2],
                        metadata=None, report=report)


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
