"""Run an exported ``.tflite`` with ``ai_edge_litert`` and check it against the Keras model.

Every check is recorded (name, passed, detail) in the report; :func:`verify_tflite` returns the
report section and the list of failed checks, and the caller decides whether to keep the artifact.
The checks are the same for every task; only the accuracy comparison is task-specific
(:func:`compare_predictions`: top-1 for classifiers, mean IoU and pixel accuracy for segmentation).
"""
from __future__ import annotations

import collections
import os
import time

import numpy as np

from keras_resnets.export.errors import ExportError
from keras_resnets.export.graph import dilated_convolutions, expected_elementwise_ops
from keras_resnets.tasks import TASKS, export_metric_labels, get_task

ELEMENTWISE_OPS = ("ADD", "MUL", "SUB")
SPACE_BATCH_OPS = ("SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND")
METRIC_NAMES = export_metric_labels()  # the metric the accuracy budget applies to -> its label


class TFLiteRunner:
    """A loaded TFLite model: quantizes inputs, dequantizes outputs, batches as the model allows.

    Args:
        model: flatbuffer bytes or a ``.tflite`` path.
        num_threads: interpreter threads (default: all cores).
    """

    def __init__(self, model, num_threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        self.num_threads = int(num_threads or os.cpu_count() or 1)
        kwargs = {"model_content": model} if isinstance(model, (bytes, bytearray)) else {"model_path": str(model)}
        self._model_kwargs = kwargs
        try:
            self.interpreter = Interpreter(num_threads=self.num_threads, **kwargs)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as err:
            raise ExportError(f"the TFLite interpreter cannot load the model: {err}") from None
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.dynamic_batch = int(self.input["shape_signature"][0]) == -1
        self._batch = int(self.input["shape"][0])

    @property
    def input_shape(self) -> tuple:
        return tuple(int(d) for d in self.input["shape"][1:])

    def operators(self) -> collections.Counter:
        """Operator name -> count in the flatbuffer (read without delegates, which merge ops)."""
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        plain = Interpreter(experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                            **self._model_kwargs)
        return collections.Counter(op["op_name"] for op in plain._get_ops_details())

    def predict(self, images: np.ndarray, chunk: int = 64) -> np.ndarray:
        """Float outputs for ``images`` (float32, in the model's input space)."""
        images = np.asarray(images, np.float32)
        if images.shape[1:] != self.input_shape:
            raise ExportError(f"images of shape {images.shape[1:]} do not match the model input {self.input_shape}")
        step = chunk if self.dynamic_batch else self._batch
        outputs = []
        for start in range(0, len(images), step):
            batch = images[start:start + step]
            if self.dynamic_batch and batch.shape[0] != self._batch:
                self.interpreter.resize_tensor_input(self.input["index"], [batch.shape[0], *self.input_shape])
                self.interpreter.allocate_tensors()
                self.input = self.interpreter.get_input_details()[0]
                self.output = self.interpreter.get_output_details()[0]
                self._batch = batch.shape[0]
            self.interpreter.set_tensor(self.input["index"], self._quantize(batch))
            self.interpreter.invoke()
            outputs.append(self._dequantize(self.interpreter.get_tensor(self.output["index"])))
        return np.concatenate(outputs)

    def latency(self, runs: int = 50, warmup: int = 10) -> dict:
        """Single-invoke latency in milliseconds on a batch-1 input: median, p10, p90 and their spread.

        ``spread_ms`` (p90 - p10) is how far apart two runs of the same model land on this host;
        a latency difference smaller than it says nothing about which model is faster.
        """
        if runs < 1:
            raise ExportError(f"benchmark runs must be >= 1, got {runs}")
        if self.dynamic_batch and self._batch != 1:
            self.predict(np.zeros((1, *self.input_shape), np.float32))
        self.interpreter.set_tensor(self.input["index"], self._quantize(np.zeros((1, *self.input_shape), np.float32)))
        for _ in range(warmup):
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1e3)
        p10, p90 = (float(np.percentile(times, q)) for q in (10, 90))
        return {"median_ms": float(np.median(times)), "p10_ms": p10, "p90_ms": p90, "spread_ms": p90 - p10,
                "mean_ms": float(np.mean(times)), "runs": runs, "warmup": warmup, "threads": self.num_threads}

    def _quantize(self, x: np.ndarray) -> np.ndarray:
        dtype = self.input["dtype"]
        if dtype == np.float32:
            return x
        scale, zero_point = self.input["quantization"]
        info = np.iinfo(dtype)
        return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(dtype)

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        if self.output["dtype"] == np.float32:
            return y
        scale, zero_point = self.output["quantization"]
        return (y.astype(np.float32) - zero_point) * scale


def verify_tflite(runner: TFLiteRunner, *, graph, precision: str, images, labels, reference,
                  preprocessing: bool, accuracy_budget: float, runs: int = 50,
                  task=TASKS[0], parity_reference=None, float32_bar: float | None = None) -> tuple:
    """Measure and check an exported model.

    Args:
        runner: the loaded artifact.
        graph: :class:`~keras_resnets.export.graph.LayerGraph` of the Keras model.
        precision: the artifact's precision (``float32`` gets the output-parity bar).
        images: held-out inputs in the artifact's input space; ``labels``: their classes
            ``(n,)``, or masks ``(n, height, width)`` for segmentation.
        reference: the Keras model's probabilities on the same images.
        preprocessing: the artifact normalises raw pixels itself.
        accuracy_budget: allowed drop in percentage points of the task's metric (top-1 for
            classification, mean IoU for segmentation).
        runs: timed invocations for the latency figures.
        task: the ``keras_resnets.tasks.Task`` or its name (the accuracy metric, the parity bar).
        parity_reference: the outputs a float32 artifact must reproduce, when they are not the
            Keras model's: a pruned artifact is checked against its fine-tuned model, while its
            accuracy drop is still measured against the original ``reference``.
        float32_bar: the float32 parity bar (default the task's ``float32_parity_bar``).

    Returns:
        ``(section, failures)``: the report section (dict) and the names of failed checks.
    """
    task = get_task(task)
    outputs = runner.predict(images)
    accuracy = compare_predictions(task, outputs, reference, labels)
    max_abs, drop = accuracy["max_abs_diff"], accuracy["drop_points"]
    parity_against = "the Keras model"
    if parity_reference is not None:
        max_abs = float(np.max(np.abs(outputs - np.asarray(parity_reference, np.float32))))
        accuracy["max_abs_diff_vs_fine_tuned"] = max_abs
        parity_against = "the fine-tuned model"
    ops = runner.operators()
    elementwise = sum(ops.get(name, 0) for name in ELEMENTWISE_OPS)
    allowed = expected_elementwise_ops(graph, preprocessing)
    non_builtin = sorted(name for name in ops if name.startswith("Flex") or name in ("CUSTOM", "DELEGATE"))
    space_batch = sum(ops.get(name, 0) for name in SPACE_BATCH_OPS)
    dilated = dilated_convolutions(graph)

    checks = [
        _check("builtin_ops_only", not non_builtin,
               "all operators are TFLite builtins" if not non_builtin else f"non-builtin: {non_builtin}"),
        # A dynamic batch keeps dilated convolutions as SPACE_TO_BATCH_ND + CONV_2D + BATCH_TO_SPACE_ND,
        # which blocks folding their BatchNormalization: reported, but only required at a static batch.
        _check("batchnorm_folded", elementwise <= allowed,
               f"{elementwise} MUL/ADD/SUB ops, at most {allowed} expected from the model's own "
               "Add/Multiply layers, unfoldable BatchNormalization and preprocessing",
               required=not runner.dynamic_batch),
    ]
    if not runner.dynamic_batch:
        checks.append(_check("dilated_conv_single_op", space_batch == 0,
                             f"{len(dilated)} dilated convolution(s), {space_batch} SPACE_TO_BATCH_ND/BATCH_TO_SPACE_ND ops"))
    if precision == "float32":
        checks.append(float32_parity_check(
            max_abs, task.float32_parity_bar if float32_bar is None else float32_bar, parity_against))
    checks.append(_check("accuracy_budget", drop <= accuracy_budget,
                         f"{METRIC_NAMES[accuracy['metric']]} drop {drop:.2f} points (budget {accuracy_budget:g})"))
    section = {
        "task": task.name,
        "accuracy": accuracy,
        "operators": {"counts": dict(sorted(ops.items())), "total": int(sum(ops.values())),
                      "builtin_only": not non_builtin, "elementwise_ops": elementwise,
                      "elementwise_ops_allowed": allowed, "space_to_batch_ops": space_batch,
                      "dilated_convolutions": len(dilated)},
        "latency": runner.latency(runs=runs),
        "checks": checks,
    }
    return section, [c["name"] for c in checks if c["required"] and not c["passed"]]


def compare_predictions(task, outputs, reference, labels, prefix: str = "tflite") -> dict:
    """The accuracy section: the exported model's ``outputs`` vs the Keras ``reference`` on ``labels``.

    Both are probabilities, ``(n, classes)`` or ``(n, height, width, classes)``; ``task`` is a
    ``keras_resnets.tasks.Task`` or its name, and its ``score`` measures both. Shared keys:
    ``metric`` (the task's ``export_metric``: ``"top1"``, ``"miou"``), ``samples``,
    ``keras_<metric>`` and ``<prefix>_<metric>`` (percent), ``drop_points`` (their difference),
    ``prediction_agreement`` (percent of arg-max predictions, per image or per pixel, that agree)
    and ``max_abs_diff``. Segmentation adds the pixel accuracy of both and the per-class IoU;
    pixels labelled 255 are left out of every metric.
    """
    try:
        task = get_task(task)
    except ValueError as err:
        raise ExportError(str(err)) from None
    outputs, reference = np.asarray(outputs, np.float32), np.asarray(reference, np.float32)
    labels = np.asarray(labels)
    metric = task.export_metric
    keras_scores, exported_scores = task.score(reference, labels), task.score(outputs, labels)
    section = {"metric": metric, "samples": int(len(labels))}
    if "class_iou" in keras_scores:
        section.update({
            "pixels": keras_scores["pixels"], "ignore_label": keras_scores["ignore_label"],
            "keras_pixel_accuracy": keras_scores["pixel_accuracy"],
            f"{prefix}_pixel_accuracy": exported_scores["pixel_accuracy"],
            "class_iou": {"keras": keras_scores["class_iou"], prefix: exported_scores["class_iou"]},
        })
    section.update({
        f"keras_{metric}": keras_scores[metric], f"{prefix}_{metric}": exported_scores[metric],
        "drop_points": keras_scores[metric] - exported_scores[metric],
        "prediction_agreement": 100.0 * float(np.mean(np.argmax(outputs, -1) == np.argmax(reference, -1))),
        "max_abs_diff": float(np.max(np.abs(outputs - reference))),
    })
    return section


def float32_parity_check(max_abs: float, bar: float, against: str = "the Keras model") -> dict:
    """The float32 parity check; its detail says what to do when a correct conversion misses the bar."""
    detail = f"max abs output difference from {against} {max_abs:.3g} (bar {bar:g})"
    if max_abs > bar:
        detail += (f"; float32 rounding alone can exceed the bar on large outputs: if the accuracy check passes, "
                   f"--float32-bar {_next_bar(max_abs):g} (float32_bar=) accepts this difference")
    return _check("float32_parity", max_abs <= bar, detail)


def _next_bar(value: float) -> float:
    """The value rounded up to one significant digit (2.8e-4 -> 3e-4)."""
    exponent = np.floor(np.log10(value))
    return float(np.ceil(value / 10 ** exponent) * 10 ** exponent)


def _check(name: str, passed: bool, detail: str, required: bool = True) -> dict:
    return {"name": name, "passed": bool(passed), "required": required, "detail": detail}
