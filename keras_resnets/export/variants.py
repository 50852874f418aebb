"""What an export can write, known before any work: the choices, the variant names, the plan.

Plain Python (no TensorFlow), so the CLI takes its choices from here. A plan names the export
mode — how to convert and verify (``keras_resnets.export.job.BUILDERS`` maps each mode to its
builder) — and every variant name it may write, so existing files are refused up front.
"""
from __future__ import annotations

import dataclasses

TARGETS = ("tflite", "saved_model", "onnx")
FLOAT32_FORMATS = ("saved_model", "onnx")  # exported in float32 only, no quantization or pruning
QUANTIZE_MODES = ("none", "float16", "dynamic", "int8", "qat", "auto")
AUTO_CANDIDATES = ("float32", "float16", "dynamic", "int8")
SELECTIVE = "int8-selective"  # the variant with some layers kept in float (--keep-float)
OPTIMIZE_FOR = ("size", "host-latency")
QAT_PATHS = ("bridge", "keras")
INTEGER_IO_TYPES = ("int8", "uint8")
CHECKPOINTS = ("best", "final")
# --quantize -> the artifact's precision (the others are their own)
PRECISIONS = {"none": "float32", "qat": "int8"}


def precision_of(quantize: str) -> str:
    """The precision of the artifact ``--quantize quantize`` writes (``none`` -> ``float32``)."""
    return PRECISIONS.get(quantize, quantize)


@dataclasses.dataclass(frozen=True)
class Naming:
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

    def saved_model(self) -> str:
        return f"{self.model}_saved_model{'-rawpixels' if self.preprocessing else ''}"

    def onnx(self) -> str:
        return f"{self.model}_float32{'-rawpixels' if self.preprocessing else ''}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """One export's mode and the variant names it may write.

    Attributes:
        mode: ``post_training``, ``selective``, ``fine_tuned`` (QAT through the tf_keras bridge,
            pruning), ``keras_qat`` or ``auto``.
        precision: the artifact's precision (``None`` for ``auto``: chosen among the candidates).
        variants: the names it may write (``auto``: every candidate).
        qat: quantization-aware fine-tuning.
    """

    mode: str
    precision: str | None
    variants: tuple
    qat: bool = False

    @property
    def fine_tunes(self) -> bool:
        return self.mode in ("fine_tuned", "keras_qat")


def plan_export(naming: Naming, quantize: str, prune=None, keep=None, qat_path: str = "bridge") -> Plan:
    """The :class:`Plan` of a TFLite export with these (already validated) options."""
    precision = precision_of(quantize)
    if quantize == "auto":
        return Plan("auto", None, tuple(naming.variant(p) for p in (*AUTO_CANDIDATES, SELECTIVE)))
    if quantize == "qat" and qat_path == "keras":
        return Plan("keras_qat", precision, (naming.variant(precision, qat=True, qat_path=qat_path),), qat=True)
    if quantize == "qat" or prune is not None:
        qat = quantize == "qat"
        return Plan("fine_tuned", precision, (naming.variant(precision, qat=qat, prune=prune),), qat=qat)
    if keep is not None:
        return Plan("selective", SELECTIVE, (naming.variant(SELECTIVE),))
    return Plan("post_training", precision, (naming.variant(precision),))


def artifact_files(variant: str) -> dict:
    """Role -> file name of everything a TFLite export of ``variant`` writes."""
    return {"artifact": f"{variant}.tflite", "metadata": f"{variant}.json",
            "report_json": f"{variant}.report.json", "report_md": f"{variant}.report.md",
            "chart": f"{variant}.sensitivity.png"}
