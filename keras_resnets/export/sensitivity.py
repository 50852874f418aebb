"""Per-layer int8 sensitivity and selective quantization (some layers kept in float).

TensorFlow's ``tf.lite.experimental.QuantizationDebugger`` calibrates the model once, then runs the
float and the quantized model side by side on the debug images and records, for every quantized
op's output, the error quantization adds. The error is reported as RMSE divided by the output
tensor's quantization scale (``rmse_over_scale``): an error of about 0.29 (1/sqrt(12)) is what
rounding to the int8 grid costs; much more means the layer's range is too wide for 8 bits, or its
error compounds from earlier layers. Layers are listed most harmful first.

A *layer* here is one quantized TFLite op, named by its output tensor (``tensor``) and by ``layer``:
the Keras layer names the converter fused into it, joined by ``+`` (``conv2d_1+activation_1``).
``--keep-float`` accepts either form. Selective quantization reuses the debugger's calibrated model
and quantizes everything except the named ops (``mlir_quantize`` with ``denylisted_nodes``); the
converter inserts QUANTIZE/DEQUANTIZE around the float ops.
"""
from __future__ import annotations

import dataclasses
import io
import math
import re

import numpy as np

from keras_resnets.export.errors import ExportError

SENSITIVITY_METRIC = "rmse_over_scale"
# Rounding to the grid alone: the RMSE of a uniform error over one step.
ROUNDING_RMSE_OVER_SCALE = 1.0 / math.sqrt(12.0)
KEEP_FLOAT_AUTO = "auto"


@dataclasses.dataclass
class Sensitivity:
    """The debugger's result for one model: per-layer rows (most harmful first) and the calibrated model."""

    rows: list
    calibrated_model: bytes
    debug_samples: int

    def section(self, chart_name: str | None) -> dict:
        """The report's ``sensitivity`` section."""
        return {"metric": SENSITIVITY_METRIC, "rounding_only": ROUNDING_RMSE_OVER_SCALE,
                "debug_samples": self.debug_samples, "chart": chart_name, "layers": self.rows}


def measure_sensitivity(converter, debug_images) -> Sensitivity:
    """Run the quantization debugger on ``converter`` (set up for full int8) over ``debug_images``.

    Args:
        converter: a ``tf.lite.TFLiteConverter`` with optimizations and a representative set.
        debug_images: inputs ``(n, h, w, c)`` in the model's input space.
    """
    import tensorflow as tf

    images = np.asarray(debug_images, np.float32)

    def debug_dataset():
        for i in range(len(images)):
            yield [images[i:i + 1]]

    options = tf.lite.experimental.QuantizationDebugOptions(model_debug_metrics=None)
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug_dataset,
                                                         debug_options=options)
    debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    return Sensitivity(rows=_rows(dump.getvalue()), calibrated_model=debugger.calibrated_model,
                       debug_samples=len(images))


def _rows(csv_text: str) -> list:
    import csv

    rows = []
    for record in csv.DictReader(io.StringIO(csv_text)):
        scale = float(record["scale"])
        rmse = math.sqrt(max(float(record["mean_squared_error"]), 0.0))
        rows.append({
            "op": record["op_name"], "tensor": record["tensor_name"], "layer": layer_label(record["tensor_name"]),
            "rmse": rmse, "scale": scale, SENSITIVITY_METRIC: rmse / scale if scale > 0 else float("inf"),
            "max_abs_error": float(record["max_abs_error"]), "mean_error": float(record["mean_error"]),
        })
    rows.sort(key=lambda r: (-r[SENSITIVITY_METRIC], r["tensor"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def layer_label(tensor_name: str) -> str:
    """Keras layer names fused into one TFLite tensor: ``functional_1/conv2d_1/convolution`` -> ``conv2d_1``."""
    names = []
    for part in tensor_name.split(";"):
        pieces = [p for p in part.split("/") if p]
        # "<model scope>/<layer>/<op>": the layer is the segment after the model's scope
        name = pieces[1] if len(pieces) >= 3 else re.sub(r":\d+$", "", pieces[0] if pieces else part)
        if name not in names:
            names.append(name)
    return "+".join(reversed(names))  # the converter lists the fused activation first


def resolve_keep_float(names, rows) -> list:
    """Tensor names for ``names`` (each a ``layer`` label or a ``tensor`` name from the report).

    Raises:
        ExportError: a name matches no quantized layer; the message lists the valid ones.
    """
    by_label = {r["layer"]: r["tensor"] for r in rows}
    tensors = {r["tensor"] for r in rows}
    resolved, unknown = [], []
    for name in names:
        if name in tensors:
            resolved.append(name)
        elif name in by_label:
            resolved.append(by_label[name])
        else:
            unknown.append(name)
    if unknown:
        raise ExportError(f"--keep-float: no quantized layer named {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(r['layer'] for r in rows)} (or 'auto')")
    return list(dict.fromkeys(resolved))


def parse_keep_float(value) -> list | str | None:
    """``None``, ``"auto"`` or a list of names from ``"a,b"`` or a sequence; empty names are refused."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip() == KEEP_FLOAT_AUTO:
            return KEEP_FLOAT_AUTO
        value = value.split(",")
    names = [str(v).strip() for v in value]
    if not names or any(not n for n in names):
        raise ExportError(f"--keep-float must be 'auto' or comma-separated layer names; got {value!r}")
    return names


def selective_int8(sensitivity: Sensitivity, keep_tensors, io_type: str) -> bytes:
    """Full-integer model from the calibrated model with the ops producing ``keep_tensors`` left in float."""
    import tensorflow as tf
    from tensorflow.lite.python import convert as lite_convert, util

    if io_type == "int8":
        return lite_convert.mlir_quantize(sensitivity.calibrated_model, fully_quantize=True,
                                          denylisted_nodes=list(keep_tensors) or None,
                                          input_data_type=tf.int8, output_data_type=tf.int8)
    # mlir_quantize quantizes the I/O of a fully quantized model to int8 whatever type is asked for; for
    # uint8, keep float I/O and let the converter's own post-processing step turn it into uint8
    model = lite_convert.mlir_quantize(sensitivity.calibrated_model, fully_quantize=False,
                                       denylisted_nodes=list(keep_tensors) or None)
    return util.modify_model_io_type(model, tf.uint8, tf.uint8)


def sensitivity_chart(rows, title: str, top: int = 30) -> bytes:
    """PNG bar chart of ``rmse_over_scale`` per layer, most harmful first (at most ``top`` bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = rows[:top]
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(shown) + 1.4))
    labels = [f"{r['layer']} ({r['op']})" for r in shown]
    values = [r[SENSITIVITY_METRIC] for r in shown]
    # The axis spans the values (and the rounding-only line), not 0..max: close values stay apart.
    low, high = min(*values, ROUNDING_RMSE_OVER_SCALE), max(*values, ROUNDING_RMSE_OVER_SCALE)
    pad = 0.08 * (high - low or high or 1.0)
    left = max(0.0, low - pad)
    ax.barh(range(len(shown)), [v - left for v in values], left=left, color="#c0504d")
    for i, v in enumerate(values):
        ax.text(v, i, f" {v:.3f}", va="center", fontsize=6)
    ax.set_xlim(left, high + 2 * pad)
    ax.axvline(ROUNDING_RMSE_OVER_SCALE, color="grey", linestyle="--", linewidth=1,
               label=f"rounding only ({ROUNDING_RMSE_OVER_SCALE:.2f})")
    ax.set_yticks(range(len(shown)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("RMSE / scale of the layer's int8 output (higher is worse)"
                  + (f"\naxis starts at {left:.2f}, not 0" if left > 0 else ""))
    ax.set_title(title + ("" if len(rows) <= top else f" (top {top} of {len(rows)})"), fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")  # long layer names stay readable
    plt.close(fig)
    return buffer.getvalue()
