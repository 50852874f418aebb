"""``export_model``: a run directory or ``.keras`` file in, a verified artifact and its report out."""
from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from keras_resnets.export import convert, report as report_lib
from keras_resnets.export.datasets import load_export_data
from keras_resnets.export.errors import ExportError, UnsupportedOperationError, VerificationError
from keras_resnets.export.graph import layer_graph
from keras_resnets.export.keras_qat import QAT_PARITY_POINTS, keras_qat_and_convert
from keras_resnets.export.optimize import FineTuneOptions, optimize_and_convert
from keras_resnets.export.sensitivity import (KEEP_FLOAT_AUTO, measure_sensitivity, parse_keep_float,
                                              resolve_keep_float, selective_int8, sensitivity_chart)
from keras_resnets.export.source import ExportSource, load_source
from keras_resnets.export.verify import (METRIC_NAMES, TFLiteRunner, compare_predictions, float32_parity_check,
                                         verify_tflite)

TARGETS = ("tflite", "saved_model")
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8", "qat", "auto")
AUTO_CANDIDATES = ("float32", "float16", "dynamic", "int8")
SELECTIVE = "int8-selective"  # the variant with some layers kept in float (--keep-float)
OPTIMIZE_FOR = ("size", "host-latency")
QAT_PATHS = ("bridge", "keras")
SOURCE_BEFORE_QAT = "the source model, post-training int8 (the error QAT fine-tuning had to remove)"
DEBUG_SAMPLES = 64  # calibration images the quantization debugger runs for the sensitivity report


@dataclasses.dataclass
class ExportResult:
    """What :func:`export_model` wrote.

    Attributes:
        artifact: the ``.tflite`` file or SavedModel directory.
        report_json, report_md: the verification report next to it.
        metadata: the edge sidecar (``<artifact>.json``; ``None`` for SavedModel).
        report: the report as a dict.
    """

    artifact: Path
    report_json: Path
    report_md: Path
    metadata: Path | None
    report: dict


def export_model(source, *, to: str = "tflite", quantize: str = "none", prune: float | None = None,
                 dataset=None, output_dir=None, force: bool = False, io_type: str = "int8",
                 dynamic_batch: bool = False, include_preprocessing: bool = False,
                 accuracy_budget: float = 1.0, num_threads: int | None = None, benchmark_runs: int = 50,
                 calibration_samples: int = 200, eval_samples: int | None = None,
                 fine_tune: FineTuneOptions | None = None, checkpoint: str = "best",
                 keep_float=None, optimize_for: str = "size", float32_bar: float | None = None) -> ExportResult:
    """Export, verify and report.

    Args:
        source: a run directory, a ``.keras`` file, or an already loaded ``ExportSource``.
        to: ``"tflite"`` or ``"saved_model"``.
        quantize: ``"none"`` (float32), ``"float16"``, ``"dynamic"`` (int8 weights), ``"int8"``
            (full integer, calibrated), ``"qat"`` (quantization-aware fine-tuning, then full
            integer) or ``"auto"`` (the smallest variant within ``accuracy_budget``, selective
            int8 included when plain int8 misses the budget).
        prune: magnitude-prune conv/dense kernels to this sparsity in (0, 1) while fine-tuning.
        dataset: data for calibration and verification (default: the run's); see
            :func:`~keras_resnets.export.datasets.load_export_data`.
        output_dir: where to write (default ``RUN/export``).
        force: overwrite existing files of the same name.
        io_type: full-integer input/output type, ``"int8"`` or ``"uint8"``.
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
    _validate(to, quantize, prune, io_type, accuracy_budget, benchmark_runs, optimize_for, float32_bar)
    keep = parse_keep_float(keep_float)
    qat_path = (fine_tune or FineTuneOptions()).qat_path
    if qat_path not in QAT_PATHS:
        raise ExportError(f"--qat-path must be one of {', '.join(QAT_PATHS)}; got {qat_path!r}")
    _validate_combinations(to, quantize, prune, keep, optimize_for, qat_path)
    src = source if isinstance(source, ExportSource) else load_source(source, checkpoint=checkpoint)
    float32_bar = src.task.float32_parity_bar if float32_bar is None else float(float32_bar)
    out_dir = Path(output_dir) if output_dir is not None else src.default_output_dir
    batch_size = None if dynamic_batch else 1
    if to == "saved_model":
        return _export_saved_model(src, out_dir, force, dataset, batch_size, include_preprocessing, eval_samples,
                                   float32_bar)
    naming = _Naming(src.name, io_type, batch_size, include_preprocessing)
    fine_tune = fine_tune or FineTuneOptions()
    planned = _planned_variants(naming, quantize, prune, keep, fine_tune.qat_path)
    _refuse_overwrite(out_dir, [f for v in planned for f in artifact_files(v).values()], force,
                      planned if len(planned) > 1 else None)
    fine_tuning = quantize == "qat" or prune is not None
    data = load_export_data(src, dataset, calibration_samples=calibration_samples, eval_samples=eval_samples,
                            train_samples=fine_tune.max_images if fine_tuning else None)
    job = _Job(src, data, layer_graph(src.model), naming, accuracy_budget, num_threads, benchmark_runs, float32_bar)
    if quantize == "auto":
        variant, flatbuffer, section, extra = job.choose_automatically(optimize_for)
    elif quantize == "qat" and fine_tune.qat_path == "keras":
        flatbuffer, info, fine_tuned = keras_qat_and_convert(
            src, data, io_type=io_type, batch_size=batch_size, preprocessing=include_preprocessing,
            options=fine_tune, seed=int(src.config.get("seed", 0)))
        variant = planned[0]
        section, failed = job.verify(flatbuffer, "int8")
        failed += _check_qat_parity(section, info, fine_tuned, data.eval_labels)
        _raise_on_failure(variant, section, failed)
        extra = {"optimization": info, **job.sensitivity_extra(variant, subject=SOURCE_BEFORE_QAT)}
    elif quantize == "qat" or prune is not None:
        precision = {"none": "float32", "qat": "int8"}.get(quantize, quantize)
        flatbuffer, info, fine_tuned = optimize_and_convert(
            src, data, qat=quantize == "qat", prune=prune, precision=precision, io_type=io_type,
            batch_size=batch_size, preprocessing=include_preprocessing, options=fine_tune,
            seed=int(src.config.get("seed", 0)))
        variant = planned[0]
        section, failed = job.verify(flatbuffer, precision, parity_reference=fine_tuned)
        _raise_on_failure(variant, section, failed)
        extra = {"optimization": info}
        if precision == "int8":
            extra.update(job.sensitivity_extra(variant, subject=SOURCE_BEFORE_QAT))
    elif keep is not None:
        variant = planned[0]
        flatbuffer, selection = job.convert_selective(keep)
        section, failed = job.verify(flatbuffer, SELECTIVE)
        _raise_on_failure(variant, section, failed)
        extra = {"keep_float": selection, **job.sensitivity_extra(variant)}
    else:
        precision = "float32" if quantize == "none" else quantize
        flatbuffer = job.convert(precision)
        variant = planned[0]
        section, failed = job.verify(flatbuffer, precision)
        _raise_on_failure(variant, section, failed)
        extra = job.sensitivity_extra(variant) if precision == "int8" else {}
    return job.write(out_dir, variant, flatbuffer, section, extra, force)


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
    if io_type not in convert.INTEGER_IO_TYPES:
        raise ExportError(f"--io-type must be one of {', '.join(convert.INTEGER_IO_TYPES)}; got {io_type!r}")
    if accuracy_budget < 0:
        raise ExportError(f"--accuracy-budget must be >= 0 points; got {accuracy_budget!r}")
    if benchmark_runs < 1:
        raise ExportError(f"--runs must be >= 1; got {benchmark_runs!r}")
    if float32_bar is not None and not float(float32_bar) >= 0:
        raise ExportError(f"--float32-bar must be >= 0; got {float32_bar!r}")
    if optimize_for not in OPTIMIZE_FOR:
        raise ExportError(f"--optimize-for must be one of {', '.join(OPTIMIZE_FOR)}; got {optimize_for!r}")


def _validate_combinations(to, quantize, prune, keep, optimize_for, qat_path):
    if to == "saved_model" and (quantize != "none" or prune is not None or keep is not None):
        raise ExportError(f"--to saved_model exports float32 only; got quantize={quantize!r}, prune={prune!r} "
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


def _check_qat_parity(section: dict, info: dict, qat_outputs, labels) -> list:
    """The int8 artifact must reproduce the Keras QAT model's top-1 within QAT_PARITY_POINTS."""
    tflite = section["accuracy"]["tflite_top1"]
    gap = abs(tflite - info["fine_tuned_keras"])
    section["accuracy"]["keras_qat_top1"] = info["fine_tuned_keras"]
    section["checks"].append({"name": "qat_parity", "passed": gap <= QAT_PARITY_POINTS, "required": True,
                              "detail": f"int8 top-1 {tflite:.2f}% vs Keras QAT model {info['fine_tuned_keras']:.2f}%: "
                                        f"{gap:.2f} points apart (bar {QAT_PARITY_POINTS:g})"})
    return [] if gap <= QAT_PARITY_POINTS else ["qat_parity"]


def _raise_on_failure(variant: str, section: dict, failed: list) -> None:
    if failed:
        details = "; ".join(c["detail"] for c in section["checks"] if c["name"] in failed)
        raise VerificationError(f"{variant} failed verification ({', '.join(failed)}): {details}; nothing was written")


@dataclasses.dataclass(frozen=True)
class _Naming:
    """What an artifact's name says besides its precision: model, io type, batch, input pixels."""

    model: str
    io_type: str
    batch_size: int | None
    preprocessing: bool

    def variant(self, precision: str, qat: bool = False, prune: float | None = None, qat_path: str = "bridge") -> str:
        name = f"{self.model}_{('qatk3-' if qat_path == 'keras' else 'qat-') if qat else ''}{precision}"
        if precision.startswith("int8") and self.io_type != "int8":
            name += f"-{self.io_type}io"
        if prune is not None:
            name += f"-pruned{round(100 * prune)}"
        if self.batch_size is None:
            name += "-dynbatch"
        if self.preprocessing:
            name += "-rawpixels"
        return name


def _planned_variants(naming: _Naming, quantize: str, prune, keep, qat_path: str = "bridge") -> list:
    """The variant names this export may write (``auto``: every candidate), known before any work."""
    if quantize == "auto":
        return [naming.variant(p) for p in (*AUTO_CANDIDATES, SELECTIVE)]
    if quantize == "qat" or prune is not None:
        precision = {"none": "float32", "qat": "int8"}.get(quantize, quantize)
        return [naming.variant(precision, qat=quantize == "qat", prune=prune, qat_path=qat_path)]
    if keep is not None:
        return [naming.variant(SELECTIVE)]
    return [naming.variant("float32" if quantize == "none" else quantize)]


def artifact_files(variant: str) -> dict:
    """Role -> file name of everything a TFLite export of ``variant`` writes."""
    return {"artifact": f"{variant}.tflite", "metadata": f"{variant}.json",
            "report_json": f"{variant}.report.json", "report_md": f"{variant}.report.md",
            "chart": f"{variant}.sensitivity.png"}


@dataclasses.dataclass
class _Job:
    """One TFLite export: converts, verifies and writes variants of one source."""

    source: ExportSource
    data: object
    graph: object
    naming: _Naming
    accuracy_budget: float
    num_threads: int | None
    runs: int
    float32_bar: float

    def __post_init__(self):
        self.preprocessing, self.io_type = self.naming.preprocessing, self.naming.io_type
        self.batch_size = self.naming.batch_size
        self.eval_inputs = self.data.model_inputs(self.data.eval_images, self.preprocessing)
        outputs = np.asarray(self.source.model.predict(self.data.eval_images, verbose=0, batch_size=64))
        self.reference = _softmax(outputs) if self.source.classifier_activation is None else outputs
        self._saved_model_dir = None
        self._sensitivity = None

    def _saved_model(self) -> Path:
        """The float SavedModel every post-training conversion starts from (written once)."""
        if self._saved_model_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="keras-resnets-export-")
            self._saved_model_dir = Path(self._tmp.name) / "saved_model"
            pre = self.preprocessing
            convert.write_saved_model(self.source.model, self._saved_model_dir, input_shape=self.source.input_shape,
                                      batch_size=self.batch_size, add_softmax=self.source.classifier_activation is None,
                                      mean=self.source.mean if pre else None, std=self.source.std if pre else None)
        return self._saved_model_dir

    def _representative(self):
        return self.data.model_inputs(self.data.calibration, self.preprocessing)

    def convert(self, precision: str) -> bytes:
        """Post-training conversion of the Keras model."""
        return convert.convert_saved_model(self._saved_model(), precision, representative=self._representative(),
                                           io_type=self.io_type)

    def sensitivity(self):
        """Per-layer int8 error from the quantization debugger (run once per export)."""
        if self._sensitivity is None:
            representative = self._representative()
            converter = convert.make_converter(self._saved_model(), "int8", representative=representative,
                                               io_type=self.io_type)
            self._sensitivity = measure_sensitivity(converter, representative[:DEBUG_SAMPLES])
        return self._sensitivity

    def sensitivity_extra(self, variant: str, subject: str = "this artifact's model, post-training int8") -> dict:
        """The report's ``sensitivity`` section and its bar chart (a file written next to the artifact).

        ``subject`` says which model the figures describe: for QAT, the source model quantized after
        training, i.e. the error quantization-aware training had to remove.
        """
        measured = self.sensitivity()
        chart = artifact_files(variant)["chart"]
        png = sensitivity_chart(measured.rows, f"{variant}\nint8 error per layer, most harmful first")
        return {"sensitivity": {**measured.section(chart), "subject": subject}, "_files": {chart: png}}

    def convert_selective(self, keep) -> tuple:
        """Selective int8: ``keep`` (names or ``"auto"``) in float, the rest full integer.

        Returns ``(flatbuffer, keep_float report section)``.
        """
        measured = self.sensitivity()
        if keep != KEEP_FLOAT_AUTO:
            tensors = resolve_keep_float(keep, measured.rows)
            return self._selective(tensors), self._selection("named", tensors, [])
        search = []
        for count in range(len(measured.rows) + 1):  # 0: plain int8 may already meet the budget
            tensors = [r["tensor"] for r in measured.rows[:count]]
            flatbuffer = self._selective(tensors)
            drop = self._drop(flatbuffer)
            search.append({"kept": count, "drop_points": drop})
            if drop <= self.accuracy_budget:
                return flatbuffer, self._selection("auto", tensors, search)
        raise VerificationError(f"--keep-float auto: even with all {len(measured.rows)} quantized layers in float "
                                f"the drop is {search[-1]['drop_points']:.2f} points, above the "
                                f"{self.accuracy_budget:g}-point budget; nothing was written")

    def _selective(self, tensors) -> bytes:
        try:
            return selective_int8(self.sensitivity(), tensors, self.io_type)
        except Exception as err:  # ConverterError and friends
            raise UnsupportedOperationError(f"selective int8 conversion failed: {str(err).splitlines()[0][:300]}") from None

    def _selection(self, mode: str, tensors, search) -> dict:
        labels = {r["tensor"]: r["layer"] for r in self.sensitivity().rows}
        return {"mode": mode, "layers": [labels[t] for t in tensors], "tensors": list(tensors), "search": search}

    def _drop(self, flatbuffer: bytes) -> float:
        outputs = TFLiteRunner(flatbuffer, num_threads=self.num_threads).predict(self.eval_inputs)
        return compare_predictions(self.source.task, outputs, self.reference, self.data.eval_labels)["drop_points"]

    def verify(self, flatbuffer: bytes, precision: str, parity_reference=None) -> tuple:
        runner = TFLiteRunner(flatbuffer, num_threads=self.num_threads)
        section, failed = verify_tflite(runner, graph=self.graph, precision=precision, images=self.eval_inputs,
                                        labels=self.data.eval_labels, reference=self.reference,
                                        preprocessing=self.preprocessing, accuracy_budget=self.accuracy_budget,
                                        runs=self.runs, task=self.source.task, parity_reference=parity_reference,
                                        float32_bar=self.float32_bar)
        section["precision"] = precision
        section["metadata"] = None
        self._last_runner = runner
        return section, failed

    def choose_automatically(self, optimize_for: str) -> tuple:
        """Convert and verify every post-training variant and choose one (see :func:`choose_variant`).

        Selective int8 (``--keep-float auto``) is a candidate when full int8 misses the accuracy budget.
        """
        candidates = [self._candidate(precision, self.convert(precision)) for precision in AUTO_CANDIDATES]
        int8 = candidates[-1]
        selection = None
        if "accuracy_budget" in int8["failed_checks"]:
            try:
                flatbuffer, selection = self.convert_selective(KEEP_FLOAT_AUTO)
                candidates.append(self._candidate(SELECTIVE, flatbuffer))
            except (VerificationError, UnsupportedOperationError) as err:
                candidates.append({"variant": self.naming.variant(SELECTIVE), "precision": SELECTIVE,
                                   "size_bytes": None, "median_ms": None, "spread_ms": None, "drop_points": None,
                                   "failed_checks": [str(err)]})
        choice, reason = choose_variant(candidates, optimize_for, self.accuracy_budget)
        section = choice["_section"]
        section["size_vs_float32"] = choice["size_bytes"] / candidates[0]["size_bytes"]
        extra = {"auto": {"reason": reason, "accuracy_budget": self.accuracy_budget, "optimize_for": optimize_for,
                          "candidates": [{k: v for k, v in c.items() if not k.startswith("_")} for c in candidates]}}
        if choice["precision"] in ("int8", SELECTIVE):
            extra.update(self.sensitivity_extra(choice["variant"]))
        if choice["precision"] == SELECTIVE:
            extra["keep_float"] = selection
        self._last_runner = TFLiteRunner(choice["_flatbuffer"], num_threads=self.num_threads)
        return choice["variant"], choice["_flatbuffer"], section, extra

    def _candidate(self, precision: str, flatbuffer: bytes) -> dict:
        section, failed = self.verify(flatbuffer, precision)
        latency = section["latency"]
        return {"variant": self.naming.variant(precision), "precision": precision, "size_bytes": len(flatbuffer),
                "median_ms": latency["median_ms"], "spread_ms": latency["spread_ms"],
                "drop_points": section["accuracy"]["drop_points"], "failed_checks": failed,
                "_flatbuffer": flatbuffer, "_section": section}

    def write(self, out_dir: Path, variant: str, flatbuffer: bytes, section: dict, extra: dict,
              force: bool) -> ExportResult:
        """Stage all files in a temporary folder inside ``out_dir``, then move them into place."""
        extra = dict(extra)
        files = extra.pop("_files", {})
        names = {k: v for k, v in artifact_files(variant).items() if k != "chart"}
        out_dir.mkdir(parents=True, exist_ok=True)
        _refuse_overwrite(out_dir, [*names.values(), *files], force)
        metadata = report_lib.sidecar_metadata(self.source, self._last_runner, artifact_name=names["artifact"],
                                               preprocessing=self.preprocessing)
        report = {"artifact": names["artifact"], "source": str(self.source.model_path), "format": "tflite",
                  "task": self.source.task.name,
                  "batch": self.batch_size, "input_pixels": "raw" if self.preprocessing else "normalized",
                  "size_bytes": len(flatbuffer), "io": {"input": metadata["input"]["dtype"],
                                                         "output": metadata["output"]["dtype"]},
                  **section, "metadata": names["metadata"], **extra}
        report.setdefault("size_vs_float32", None)
        staging = Path(tempfile.mkdtemp(prefix=f".{variant}-", dir=out_dir))
        try:
            (staging / names["artifact"]).write_bytes(flatbuffer)
            TFLiteRunner(staging / names["artifact"])  # the file on disk loads
            report_lib.write_json(staging / names["metadata"], metadata)
            report_lib.write_json(staging / names["report_json"], report)
            (staging / names["report_md"]).write_text(report_lib.markdown_report(report))
            for name, content in files.items():
                (staging / name).write_bytes(content)
            for name in [*names.values(), *files]:
                (staging / name).replace(out_dir / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        report_lib.write_index(out_dir)
        return ExportResult(artifact=out_dir / names["artifact"], report_json=out_dir / names["report_json"],
                            report_md=out_dir / names["report_md"], metadata=out_dir / names["metadata"],
                            report=report)


def choose_variant(candidates: list, optimize_for: str, budget: float) -> tuple:
    """Choose among verified candidates; returns ``(candidate, reason)``.

    ``size``: the smallest passing file (ties: the earlier candidate), so a model and calibration
    set give the same choice on every machine. ``host-latency``: the passing candidate with the
    lowest median latency among those faster than the smallest by more than the larger of the
    two p10-p90 spreads; the smallest when none is.

    Raises:
        VerificationError: no candidate passed its checks.
    """
    passing = [c for c in candidates if not c["failed_checks"]]
    if not passing:
        raise VerificationError("no variant passed verification: " + "; ".join(
            f"{c['variant']} failed {', '.join(c['failed_checks'])}" for c in candidates))
    smallest = min(passing, key=lambda c: c["size_bytes"])  # min keeps the first of equal sizes
    choice, rule = smallest, "the smallest file within the budget"
    if optimize_for == "host-latency":
        faster = [c for c in passing if smallest["median_ms"] - c["median_ms"]
                  > max(smallest["spread_ms"], c["spread_ms"])]
        if faster:
            choice = min(faster, key=lambda c: c["median_ms"])
            rule = (f"faster on this host than the smallest ({smallest['variant']}, {smallest['median_ms']:.3f} ms) "
                    f"by more than the p10-p90 spread")
        else:
            rule = "the smallest file; no variant was faster on this host by more than the p10-p90 spread"
    float32 = candidates[0]
    rejected = []
    for c in candidates:
        if c is choice:
            continue
        why = ("failed " + ", ".join(c["failed_checks"])) if c["failed_checks"] else (
            "larger" if optimize_for == "size" or choice is smallest else "slower")
        rejected.append(f"{c['variant']} ({why})")
    metric = METRIC_NAMES[choice["_section"]["accuracy"]["metric"]]
    reason = (f"chose {choice['variant']}: {rule}; {choice['size_bytes'] / 1024:.1f} KiB "
              f"({choice['size_bytes'] / float32['size_bytes']:.3f}x float32), {metric} drop "
              f"{choice['drop_points']:.2f} points within the {budget:g}-point budget; host latency median "
              f"{choice['median_ms']:.3f} ms (p10-p90 spread {choice['spread_ms']:.3f} ms; "
              f"{'decided by it' if optimize_for == 'host-latency' else 'reported, not used: pass --optimize-for host-latency'}). "
              f"Not chosen: {', '.join(rejected)}")
    return choice, reason


def _export_saved_model(src: ExportSource, out_dir: Path, force: bool, dataset, batch_size, preprocessing: bool,
                        eval_samples: int | None, float32_bar: float) -> ExportResult:
    """SavedModel (``serving_default``: images -> probabilities), checked against the Keras model."""
    import tensorflow as tf

    name = f"{src.name}_saved_model{'-rawpixels' if preprocessing else ''}"
    names = [name, f"{name}.report.json", f"{name}.report.md"]
    out_dir.mkdir(parents=True, exist_ok=True)
    _refuse_overwrite(out_dir, names, force)
    if dataset or src.config.get("dataset"):
        data = load_export_data(src, dataset, calibration_samples=1, eval_samples=eval_samples or 256)
        images, labels = data.eval_images, data.eval_labels
        inputs = data.model_inputs(images, preprocessing)
    else:  # a bare .keras file without data: parity on random inputs only
        images = np.random.default_rng(0).normal(size=(16, *src.input_shape)).astype(np.float32)
        labels = None
        inputs = images * np.asarray(src.std, np.float32) + np.asarray(src.mean, np.float32) if preprocessing else images
    outputs = np.asarray(src.model.predict(images, verbose=0, batch_size=64))
    reference = _softmax(outputs) if src.classifier_activation is None else outputs
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=out_dir))
    try:
        convert.write_saved_model(src.model, staging / name, input_shape=src.input_shape, batch_size=batch_size,
                                  add_softmax=src.classifier_activation is None,
                                  mean=src.mean if preprocessing else None, std=src.std if preprocessing else None)
        serve = tf.saved_model.load(str(staging / name)).signatures[convert.SIGNATURE_KEY]
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
        size = sum(p.stat().st_size for p in (staging / name).rglob("*") if p.is_file())
        report = {"artifact": name, "source": str(src.model_path), "format": "saved_model", "task": src.task.name,
                  "precision": "float32",
                  "batch": batch_size, "input_pixels": "raw" if preprocessing else "normalized", "size_bytes": size,
                  "signature": {"key": convert.SIGNATURE_KEY, "input": convert.INPUT_NAME,
                                "output": convert.OUTPUT_NAME, "labels": src.class_names},
                  "accuracy": accuracy, "checks": checks}
        report_lib.write_json(staging / names[1], report)
        (staging / names[2]).write_text(report_lib.markdown_report(report))
        for item in names:
            target = out_dir / item
            if target.is_dir():
                shutil.rmtree(target)
            (staging / item).replace(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    report_lib.write_index(out_dir)
    return ExportResult(artifact=out_dir / name, report_json=out_dir / names[1], report_md=out_dir / names[2],
                        metadata=None, report=report)


def _refuse_overwrite(out_dir: Path, names, force: bool, candidates=None) -> None:
    """Refuse existing files unless ``force``; ``candidates``: the variants ``auto`` may write."""
    existing = [n for n in names if (out_dir / n).exists()]
    if existing and not force:
        also = f" (--quantize auto may write any of {', '.join(candidates)})" if candidates else ""
        raise ExportError(f"{out_dir / existing[0]} already exists{also}; pass --force (force=True) to overwrite "
                          "or choose another --output")


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
