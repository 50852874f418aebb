"""``export_model``: a run directory or ``.keras`` file in, a verified artifact and its report out.

It reads as plan -> source -> data -> variants -> verify -> publish: the options are checked and the
variant names planned (``keras_resnets.export.variants``) before anything loads; the source brings
the run's config and task; the data come through the dataset registry; the mode's builder
(``keras_resnets.export.job.BUILDERS``) converts and verifies; one staged step publishes every file
(``keras_resnets.export.publish``).
"""
from __future__ import annotations

from pathlib import Path

import keras

from keras_resnets.environment import native_noise_filtered
from keras_resnets.export.datasets import load_export_data
from keras_resnets.export.errors import ExportError
from keras_resnets.export.graph import layer_graph
from keras_resnets.export.job import BUILDERS, ExportJob, Request, choose_variant  # noqa: F401  (re-exported)
from keras_resnets.export.optimize import FineTuneOptions
from keras_resnets.export.publish import ExportResult, publish_tflite, refuse_overwrite
from keras_resnets.export.onnx_export import export_onnx
from keras_resnets.export.saved_model import export_saved_model
from keras_resnets.export.sensitivity import parse_keep_float
from keras_resnets.export.source import ExportSource, load_source
from keras_resnets.export.variants import (FLOAT32_FORMATS, INTEGER_IO_TYPES, OPTIMIZE_FOR, QAT_PATHS, QUANTIZE_MODES,  # noqa: F401
                                           TARGETS, Naming, artifact_files, plan_export)


def export_model(source, *, to: str = "tflite", quantize: str = "none", prune: float | None = None,
                 dataset=None, output_dir=None, force: bool = False, io_type: str | None = None,
                 dynamic_batch: bool = False, include_preprocessing: bool = False,
                 accuracy_budget: float = 1.0, num_threads: int | None = None, benchmark_runs: int = 50,
                 calibration_samples: int = 200, eval_samples: int | None = None,
                 fine_tune: FineTuneOptions | None = None, checkpoint: str = "best",
                 keep_float=None, optimize_for: str = "size", float32_bar: float | None = None) -> ExportResult:
    """Export, verify and report.

    Args:
        source: a run directory, a ``.keras`` file, or an already loaded ``ExportSource``.
        to: ``"tflite"``, ``"saved_model"`` or ``"onnx"`` (float32, checked with onnxruntime).
        quantize: ``"none"`` (float32), ``"float16"``, ``"dynamic"`` (int8 weights), ``"int8"``
            (full integer, calibrated), ``"qat"`` (quantization-aware fine-tuning, then full
            integer) or ``"auto"`` (the smallest variant within ``accuracy_budget``, selective
            int8 included when plain int8 misses the budget).
        prune: magnitude-prune conv/dense kernels to this sparsity in (0, 1) while fine-tuning.
        dataset: data for calibration and verification (default: the run's); see
            :func:`~keras_resnets.export.datasets.load_export_data`.
        output_dir: where to write (default ``RUN/export``).
        force: overwrite existing files of the same name.
        io_type: full-integer input/output type, ``"int8"`` or ``"uint8"``; default ``"uint8"`` for
            ``include_preprocessing`` (pixels 0..255, what image clients such as MediaPipe feed),
            ``"int8"`` otherwise.
        dynamic_batch: export with a dynamic batch dimension (servers) instead of batch 1.
        include_preprocessing: the artifact takes raw pixels (0..255) and normalises them itself.
        accuracy_budget: allowed drop (percentage points) versus the Keras model of top-1 for a
            classifier, of mean IoU for a segmentation model.
        num_threads: interpreter threads for the latency figures (default: all cores).
        benchmark_runs: timed runs (>= 50 for the report's bar).
        calibration_samples: representative-set size for full-integer quantization.
        eval_samples: cap on held-out images used for the accuracy comparison.
        fine_tune: :class:`~keras_resnets.export.optimize.FineTuneOptions` for ``qat``/``prune``
            (segmentation models fine-tune with per-pixel cross-entropy, ignoring label 255).
        checkpoint: ``"best"`` or ``"final"`` model of a run directory.
        keep_float: with ``quantize="int8"``: layers to keep in float, as names from the
            sensitivity report (``"conv2d_1+activation_1"`` or the tensor name; a list or a
            comma-separated string), or ``"auto"``: the most harmful layers, one more at a time,
            until the accuracy budget is met. The artifact is ``<model>_int8-selective``.
        optimize_for: how ``auto`` chooses among the variants within the budget: ``"size"`` (the
            default: the smallest file, the same choice on every machine) or ``"host-latency"``
            (a faster variant replaces the smallest only where its median latency on this machine
            is lower by more than the measured p10-p90 spread of both).
        float32_bar: the largest max-abs difference between a float32 artifact's probabilities and
            the Keras model's that passes (default the task's ``Task.float32_parity_bar``: 1e-4 per
            image, 1e-3 per pixel).

    Raises:
        ExportError: bad options or inputs, or an existing artifact without ``force`` (checked
            before any conversion; ``UnsupportedOperationError`` for ops/layers the target cannot
            express, ``VerificationError`` when the artifact fails a check; in every case nothing
            is written).
    """
    io_type = io_type or ("uint8" if include_preprocessing else "int8")
    _validate(to, quantize, prune, io_type, accuracy_budget, benchmark_runs, optimize_for, float32_bar)
    keep = parse_keep_float(keep_float)
    fine_tune = fine_tune or FineTuneOptions()
    if fine_tune.qat_path not in QAT_PATHS:
        raise ExportError(f"--qat-path must be one of {', '.join(QAT_PATHS)}; got {fine_tune.qat_path!r}")
    _validate_combinations(to, quantize, prune, keep, optimize_for, fine_tune.qat_path)
    src = source if isinstance(source, ExportSource) else load_source(source, checkpoint=checkpoint)
    float32_bar = src.task.float32_parity_bar if float32_bar is None else float(float32_bar)
    out_dir = Path(output_dir) if output_dir is not None else src.default_output_dir
    naming = Naming(src.name, io_type, None if dynamic_batch else 1, include_preprocessing)
    if to in FLOAT32_FORMATS:
        name = naming.saved_model() if to == "saved_model" else naming.onnx()
        refuse_overwrite(out_dir, [name, f"{name}.report.json", f"{name}.report.md"], force)
        data = (load_export_data(src, dataset, calibration_samples=1, eval_samples=eval_samples or 256)
                if dataset or src.config is not None else None)
        if to == "onnx":
            return export_onnx(src, name, out_dir, force, data, include_preprocessing, float32_bar)
        return export_saved_model(src, name, out_dir, force, data, naming.batch_size, include_preprocessing,
                                  float32_bar)
    plan = plan_export(naming, quantize, prune, keep, fine_tune.qat_path)
    refuse_overwrite(out_dir, [f for v in plan.variants for f in artifact_files(v).values()], force,
                     plan.variants if len(plan.variants) > 1 else None)
    data = load_export_data(src, dataset, calibration_samples=calibration_samples, eval_samples=eval_samples,
                            train_samples=fine_tune.max_images if plan.fine_tunes else None)
    job = ExportJob(src, data, layer_graph(src.model), naming, accuracy_budget, num_threads, benchmark_runs,
                    float32_bar, seed=src.seed)
    with native_noise_filtered():  # the converter's and interpreter's per-call prints; other stderr comes back
        built = BUILDERS[plan.mode](job, plan, Request(keep=keep, prune=prune, fine_tune=fine_tune,
                                                       optimize_for=optimize_for))
        return publish_tflite(src, built, out_dir, force, naming.batch_size, include_preprocessing)


def _validate(to, quantize, prune, io_type, accuracy_budget, benchmark_runs, optimize_for, float32_bar=None):
    if keras.backend.backend() != "tensorflow":  # tf.function tracing and the TFLite converter need tf tensors
        raise ExportError(f"export needs KERAS_BACKEND=tensorflow (SavedModel and TFLite trace the model with "
                          f"TensorFlow); got {keras.backend.backend()!r}. Runs trained on any backend export "
                          f"there: their .keras files are backend-independent")
    if to not in TARGETS:
        raise ExportError(f"--to must be one of {', '.join(TARGETS)}; got {to!r}")
    if quantize not in QUANTIZE_MODES:
        raise ExportError(f"--quantize must be one of {', '.join(QUANTIZE_MODES)}; got {quantize!r}")
    if prune is not None and not 0.0 < float(prune) < 1.0:
        raise ExportError(f"--prune must be a sparsity in (0, 1); got {prune!r}")
    if io_type not in INTEGER_IO_TYPES:
        raise ExportError(f"--io-type must be one of {', '.join(INTEGER_IO_TYPES)}; got {io_type!r}")
    if accuracy_budget < 0:
        raise ExportError(f"--accuracy-budget must be >= 0 points; got {accuracy_budget!r}")
    if benchmark_runs < 1:
        raise ExportError(f"--runs must be >= 1; got {benchmark_runs!r}")
    if float32_bar is not None and not float(float32_bar) >= 0:
        raise ExportError(f"--float32-bar must be >= 0; got {float32_bar!r}")
    if optimize_for not in OPTIMIZE_FOR:
        raise ExportError(f"--optimize-for must be one of {', '.join(OPTIMIZE_FOR)}; got {optimize_for!r}")


def _validate_combinations(to, quantize, prune, keep, optimize_for, qat_path):
    if to in FLOAT32_FORMATS and (quantize != "none" or prune is not None or keep is not None):
        raise ExportError(f"--to {to} exports float32 only; got quantize={quantize!r}, prune={prune!r} "
                          "(quantization and pruning apply to tflite)")
    if quantize == "auto" and prune is not None:
        raise ExportError("--quantize auto compares post-training variants; combine --prune with an explicit "
                          "--quantize (none, float16, dynamic, int8 or qat)")
    if keep is not None and (quantize != "int8" or prune is not None):
        raise ExportError(f"--keep-float applies to --quantize int8 without --prune; got quantize={quantize!r}, "
                          f"prune={prune!r} (--quantize auto tries --keep-float auto by itself)")
    if qat_path == "keras" and (quantize != "qat" or prune is not None):
        raise ExportError(f"--qat-path keras applies to --quantize qat without --prune; got quantize={quantize!r}, "
                          f"prune={prune!r}")
    if optimize_for != "size" and quantize != "auto":
        raise ExportError(f"--optimize-for chooses among the variants of --quantize auto; got quantize={quantize!r}")
