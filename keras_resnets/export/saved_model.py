"""SavedModel export (``serving_default``: images -> probabilities), checked against the Keras model."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from keras_resnets.export import convert
from keras_resnets.export import report as report_lib
from keras_resnets.export.errors import VerificationError
from keras_resnets.export.job import softmax
from keras_resnets.export.publish import ExportResult, Staging
from keras_resnets.export.verify import compare_predictions, float32_parity_check


def export_saved_model(src, name: str, out_dir: Path, force: bool, data, batch_size, preprocessing: bool,
                       float32_bar: float) -> ExportResult:
    """Write, reload, verify and publish the SavedModel ``name`` of ``src``.

    ``data``: the :class:`~keras_resnets.export.datasets.ExportData` to verify on, or ``None`` (a
    bare ``.keras`` file without data: parity on random inputs only).
    """
    import tensorflow as tf

    if data is not None:
        images, labels = data.eval_images, data.eval_labels
        inputs = data.model_inputs(images, preprocessing)
    else:
        images = np.random.default_rng(0).normal(size=(16, *src.input_shape)).astype(np.float32)
        labels = None
        inputs = images * np.asarray(src.std, np.float32) + np.asarray(src.mean, np.float32) if preprocessing else images
    outputs = np.asarray(src.model.predict(images, verbose=0, batch_size=64))
    reference = softmax(outputs) if src.classifier_activation is None else outputs
    names = [name, f"{name}.report.json", f"{name}.report.md"]
    with Staging(out_dir, name) as staging:
        convert.write_saved_model(src.model, staging.path / name, input_shape=src.input_shape, batch_size=batch_size,
                                  add_softmax=src.classifier_activation is None,
                                  mean=src.mean if preprocessing else None, std=src.std if preprocessing else None)
        serve = tf.saved_model.load(str(staging.path / name)).signatures[convert.SIGNATURE_KEY]
        step = 1 if batch_size == 1 else 64
        exported = np.concatenate([serve(**{convert.INPUT_NAME: tf.constant(inputs[i:i + step])})[convert.OUTPUT_NAME]
                                   .numpy() for i in range(0, len(inputs), step)])
        max_abs = float(np.max(np.abs(exported - reference)))
        checks = [float32_parity_check(max_abs, float32_bar)]
        if labels is not None:
            accuracy = compare_predictions(src.task, exported, reference, labels, prefix="exported")
        else:
            metric = src.task.export_metric
            accuracy = {"metric": metric, "samples": len(images), f"keras_{metric}": 0.0, f"exported_{metric}": 0.0,
                        "max_abs_diff": max_abs}
        if max_abs > float32_bar:
            raise VerificationError(f"{name} failed verification: {checks[0]['detail']}; nothing was written")
        size = sum(p.stat().st_size for p in (staging.path / name).rglob("*") if p.is_file())
        report = {"artifact": name, "source": str(src.model_path), "format": "saved_model", "task": src.task.name,
                  "precision": "float32", "batch": batch_size, "input_pixels": "raw" if preprocessing else "normalized",
                  "size_bytes": size, "signature": {"key": convert.SIGNATURE_KEY, "input": convert.INPUT_NAME,
                                                    "output": convert.OUTPUT_NAME, "labels": src.class_names},
                  "accuracy": accuracy, "checks": checks}
        staging.write({names[1]: report, names[2]: report_lib.markdown_report(report)})
        staging.publish(names, force)
    return ExportResult(artifact=out_dir / name, report_json=out_dir / names[1], report_md=out_dir / names[2],
                        metadata=None, report=report)
