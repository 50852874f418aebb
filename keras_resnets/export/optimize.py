"""Quantization-aware training and pruning, driven from the Keras 3 side.

The Keras 3 model is described as a layer graph plus its weights and handed to
:mod:`keras_resnets.export.optimize_worker` in a child process, which rebuilds it in tf_keras,
fine-tunes with tfmot and converts it. Keeping tfmot out of this process keeps ``tf.keras`` and
the rest of the package on Keras 3.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from keras_resnets.export.errors import ExportError, UnsupportedOperationError
from keras_resnets.export.graph import layer_graph

BRIDGE_CHECK_SAMPLES = 32


@dataclasses.dataclass
class FineTuneOptions:
    """Fine-tuning after the bridge.

    Attributes:
        epochs: passes over the fine-tuning images.
        learning_rate: Adam learning rate (small: the model is already trained).
        batch_size: fine-tuning batch size.
        max_images: at most this many training images are used.
        qat_path: ``"bridge"`` (tfmot on a tf_keras rebuild in a worker process; QAT and pruning)
            or ``"keras"`` (the Keras 3 QAT layers of ``keras_resnets.layers.quantization``,
            in this process; QAT of classifiers, no pruning).
    """

    epochs: int = 2
    learning_rate: float = 1e-4
    batch_size: int = 64
    max_images: int = 4096
    qat_path: str = "bridge"


def optimize_and_convert(source, data, *, qat: bool, prune: float | None, precision: str, io_type: str,
                         batch_size, preprocessing: bool, options: FineTuneOptions, seed: int = 0) -> tuple:
    """Fine-tune with QAT and/or pruning in a worker process and convert to TFLite.

    Args:
        source: the :class:`~keras_resnets.export.source.ExportSource`.
        data: the :class:`~keras_resnets.export.datasets.ExportData` (normalised images).
        qat: quantization-aware training (the result is full-integer int8).
        prune: target sparsity in (0, 1), or ``None``.
        precision: TFLite precision of the converted model (``int8`` for QAT).
        io_type: int8 model input/output type.
        batch_size: static batch size of the artifact or ``None``.
        preprocessing: the artifact takes raw pixels and normalises them itself.
        options: :class:`FineTuneOptions`.

    Returns:
        ``(flatbuffer bytes, info dict for the report, fine-tuned outputs)``: the last are the
        fine-tuned tf_keras model's probabilities on ``data.eval_images``, which a float32
        artifact must reproduce (it no longer matches the original model once pruned).
    """
    if prune is not None and not 0.0 < prune < 1.0:
        raise ExportError(f"prune must be a sparsity in (0, 1), got {prune!r}")
    graph = layer_graph(source.model)
    count = min(options.max_images, len(data.train_labels))
    train_images, train_labels = data.train_images[:count], data.train_labels[:count]
    check_images = data.eval_images[:BRIDGE_CHECK_SAMPLES]
    arrays = {
        "train_images": train_images, "train_labels": train_labels,
        "eval_images": data.eval_images, "eval_labels": data.eval_labels,
        "check_images": check_images,
        "check_reference": np.asarray(source.model.predict(check_images, verbose=0)),
        "representative": data.model_inputs(data.calibration, preprocessing),
    }
    for layer in source.model.layers:
        for i, value in enumerate(layer.get_weights()):
            arrays[f"w:{layer.name}/{i}"] = value
    spec = {
        "graph": {"nodes": [dataclasses.asdict(n) for n in graph.nodes],
                  "inputs": graph.inputs, "outputs": graph.outputs},
        "qat": qat, "prune": prune, "seed": seed,
        "fine_tune": {"epochs": options.epochs, "learning_rate": options.learning_rate,
                      "batch_size": options.batch_size, "from_logits": source.classifier_activation is None,
                      "task": source.task.name},
        "export": {"precision": precision, "io_type": io_type, "batch_size": batch_size,
                   "input_shape": list(source.input_shape), "add_softmax": source.classifier_activation is None,
                   "preprocessing": {"mean": source.mean, "std": source.std} if preprocessing else None},
    }
    with tempfile.TemporaryDirectory(prefix="keras-resnets-optimize-") as tmp:
        work = Path(tmp)
        (work / "spec.json").write_text(json.dumps(spec))
        np.savez(work / "arrays.npz", **arrays)
        package_root = str(Path(__file__).resolve().parents[2])  # the worker imports this package
        path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path,
               "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
        proc = subprocess.run([sys.executable, "-m", "keras_resnets.export.optimize_worker", str(work)],
                              env=env, capture_output=True, text=True)
        if (work / "error.json").is_file():
            error = json.loads((work / "error.json").read_text())
            cls = UnsupportedOperationError if error["type"] == "UnsupportedOperationError" else ExportError
            raise cls(error["message"])
        if proc.returncode != 0 or not (work / "model.tflite").is_file():
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise ExportError(f"the QAT/pruning worker failed (exit {proc.returncode}): {tail}")
        info = json.loads((work / "result.json").read_text())
        info["fine_tune"] = {**spec["fine_tune"], "images": count}
        return (work / "model.tflite").read_bytes(), info, np.load(work / "fine_tuned_outputs.npy")
