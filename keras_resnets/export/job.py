"""One TFLite export's work: convert, verify and measure variants of one source, by mode.

:data:`BUILDERS` is the table of export modes (``keras_resnets.export.variants.Plan.mode``): each
builder converts, verifies and returns a :class:`Built` variant, or raises ``VerificationError``.
"""
from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from keras_resnets.export import convert
from keras_resnets.export.errors import UnsupportedOperationError, VerificationError
from keras_resnets.export.keras_qat import QAT_PARITY_POINTS, QAT_TIE_STEPS, keras_qat_and_convert
from keras_resnets.export.optimize import FineTuneOptions, optimize_and_convert
from keras_resnets.export.sensitivity import (KEEP_FLOAT_AUTO, measure_sensitivity, resolve_keep_float,
                                              selective_int8, sensitivity_chart)
from keras_resnets.export.source import ExportSource
from keras_resnets.export.variants import AUTO_CANDIDATES, SELECTIVE, Naming, Plan, artifact_files
from keras_resnets.export.verify import METRIC_NAMES, TFLiteRunner, compare_predictions, verify_tflite

SOURCE_BEFORE_QAT = "the source model, post-training int8 (the error QAT fine-tuning had to remove)"
DEBUG_SAMPLES = 64  # calibration images the quantization debugger runs for the sensitivity report


@dataclasses.dataclass
class Built:
    """A converted and verified variant: its name, flatbuffer, report section and extra report keys
    (``extra["_files"]``: further files to publish next to it, name -> bytes)."""

    variant: str
    flatbuffer: bytes
    section: dict
    extra: dict


@dataclasses.dataclass(frozen=True)
class Request:
    """The options of one export that its builder reads besides the plan."""

    keep: object = None
    prune: float | None = None
    fine_tune: FineTuneOptions = dataclasses.field(default_factory=FineTuneOptions)
    optimize_for: str = "size"


@dataclasses.dataclass
class ExportJob:
    """One TFLite export: converts, verifies and writes variants of one source."""

    source: ExportSource
    data: object
    graph: object
    naming: Naming
    accuracy_budget: float
    num_threads: int | None
    runs: int
    float32_bar: float
    seed: int = 0

    def __post_init__(self):
        self.preprocessing, self.io_type = self.naming.preprocessing, self.naming.io_type
        self.batch_size = self.naming.batch_size
        self.eval_inputs = self.data.model_inputs(self.data.eval_images, self.preprocessing)
        outputs = np.asarray(self.source.model.predict(self.data.eval_images, verbose=0, batch_size=64))
        self.reference = softmax(outputs) if self.source.classifier_activation is None else outputs
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
        else:  # the per-layer chart of the int8 candidate considered, which tells what int8 would cost
            extra.update(self.sensitivity_extra(int8["variant"], subject=f"the int8 candidate {int8['variant']} "
                                                f"(considered, not chosen)"))
        if choice["precision"] == SELECTIVE:
            extra["keep_float"] = selection
        return choice["variant"], choice["_flatbuffer"], section, extra

    def _candidate(self, precision: str, flatbuffer: bytes) -> dict:
        section, failed = self.verify(flatbuffer, precision)
        latency = section["latency"]
        return {"variant": self.naming.variant(precision), "precision": precision, "size_bytes": len(flatbuffer),
                "median_ms": latency["median_ms"], "spread_ms": latency["spread_ms"],
                "drop_points": section["accuracy"]["drop_points"], "failed_checks": failed,
                "_flatbuffer": flatbuffer, "_section": section}


def build_post_training(job: ExportJob, plan: Plan, request: Request) -> Built:
    """float32, float16, dynamic or int8 conversion of the Keras model."""
    variant, flatbuffer = plan.variants[0], job.convert(plan.precision)
    section, failed = job.verify(flatbuffer, plan.precision)
    raise_on_failure(variant, section, failed)
    return Built(variant, flatbuffer, section, job.sensitivity_extra(variant) if plan.precision == "int8" else {})


def build_selective(job: ExportJob, plan: Plan, request: Request) -> Built:
    """int8 with the layers ``request.keep`` names (or ``auto`` finds) kept in float."""
    flatbuffer, selection = job.convert_selective(request.keep)
    # no layer kept in float: the artifact is plain int8 and named so
    precision = SELECTIVE if selection["layers"] else "int8"
    variant = plan.variants[0] if selection["layers"] else job.naming.variant("int8")
    section, failed = job.verify(flatbuffer, precision)
    raise_on_failure(variant, section, failed)
    return Built(variant, flatbuffer, section, {"keep_float": selection, **job.sensitivity_extra(variant)})


def build_fine_tuned(job: ExportJob, plan: Plan, request: Request) -> Built:
    """QAT through the tf_keras bridge and/or pruning, then conversion; float32 parity against the fine-tuned model."""
    flatbuffer, info, fine_tuned = optimize_and_convert(
        job.source, job.data, qat=plan.qat, prune=request.prune, precision=plan.precision, io_type=job.io_type, batch_size=job.batch_size,
        preprocessing=job.preprocessing, options=request.fine_tune, seed=job.seed)
    section, failed = job.verify(flatbuffer, plan.precision, parity_reference=fine_tuned)
    raise_on_failure(plan.variants[0], section, failed)
    extra = {"optimization": info}
    if plan.precision == "int8":
        extra.update(job.sensitivity_extra(plan.variants[0], subject=SOURCE_BEFORE_QAT))
    return Built(plan.variants[0], flatbuffer, section, extra)


def build_keras_qat(job: ExportJob, plan: Plan, request: Request) -> Built:
    """Keras 3 QAT layers, then full-integer conversion; the artifact must match the QAT model's top-1."""
    flatbuffer, info, fine_tuned = keras_qat_and_convert(
        job.source, job.data, io_type=job.io_type, batch_size=job.batch_size, preprocessing=job.preprocessing,
        options=request.fine_tune, seed=job.seed)
    section, failed = job.verify(flatbuffer, "int8")
    runner = TFLiteRunner(flatbuffer, num_threads=job.num_threads)
    failed += check_qat_parity(section, info, fine_tuned, runner.predict(job.eval_inputs),
                               runner.output["quantization"][0])
    raise_on_failure(plan.variants[0], section, failed)
    return Built(plan.variants[0], flatbuffer, section,
                 {"optimization": info, **job.sensitivity_extra(plan.variants[0], subject=SOURCE_BEFORE_QAT)})


def build_auto(job: ExportJob, plan: Plan, request: Request) -> Built:
    """Every post-training candidate (and selective int8 when int8 misses the budget); see :func:`choose_variant`."""
    return Built(*job.choose_automatically(request.optimize_for))


# export mode -> how to convert and verify it (variants.plan_export picks the mode and the names)
BUILDERS = {"post_training": build_post_training, "selective": build_selective, "fine_tuned": build_fine_tuned,
            "keras_qat": build_keras_qat, "auto": build_auto}


def check_qat_parity(section: dict, info: dict, qat_outputs, int8_outputs, output_step: float) -> list:
    """The int8 artifact must make the Keras QAT model's top-1 prediction on every decisive image.

    An image is decisive when the QAT model's two highest probabilities are more than
    ``QAT_TIE_STEPS`` int8 output steps apart; closer ones are ties that the artifact's integer
    arithmetic and output rounding decide (its output holds probabilities in steps of 1/256), which
    no float model reproduces. At most ``QAT_PARITY_POINTS`` percent of the decisive images may
    disagree. The top-1 accuracies of both are reported beside it.
    """
    qat_outputs, int8_outputs = np.asarray(qat_outputs, np.float32), np.asarray(int8_outputs, np.float32)
    top2 = np.sort(qat_outputs, axis=-1)[..., -2:]
    band = QAT_TIE_STEPS * (output_step or 1 / 256)
    margin = top2[..., 1] - top2[..., 0]
    decisive = margin > band
    disagree = qat_outputs.argmax(-1) != int8_outputs.argmax(-1)
    points = 100.0 * float(np.mean(disagree[decisive])) if decisive.any() else 0.0
    passed = points <= QAT_PARITY_POINTS
    tflite = section["accuracy"]["tflite_top1"]
    section["accuracy"]["keras_qat_top1"] = info["fine_tuned_keras"]
    widest = float(margin[disagree].max(initial=0.0))
    section["accuracy"]["qat_agreement"] = {"images": int(disagree.size), "decisive": int(decisive.sum()),
                                            "disagree_decisive": int(disagree[decisive].sum()),
                                            "disagree_near_tie": int(disagree[~decisive].sum()),
                                            "tie_band": band,
                                            "widest_gap_disagreeing": widest}
    section["checks"].append({"name": "qat_parity", "passed": passed, "required": True,
                              "detail": f"int8 top-1 differs from the Keras QAT model's on {points:.2f}% of the "
                                        f"{int(decisive.sum())} images whose top two probabilities are more than "
                                        f"{band:.4f} apart (bar {QAT_PARITY_POINTS:g}%; "
                                        f"{int(disagree[~decisive].sum())} of {int((~decisive).sum())} closer ones "
                                        f"differ; the widest gap among differing images {widest:.4f}); "
                                        f"top-1 {tflite:.2f}% vs {info['fine_tuned_keras']:.2f}%"})
    return [] if passed else ["qat_parity"]


def raise_on_failure(variant: str, section: dict, failed: list) -> None:
    if failed:
        details = "; ".join(c["detail"] for c in section["checks"] if c["name"] in failed)
        raise VerificationError(f"{variant} failed verification ({', '.join(failed)}): {details}; nothing was written")



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



def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)

