"""Reports (JSON + Markdown) next to each artifact, the export folder's index, and the edge sidecar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from keras_resnets.export import metadata as tflite_metadata, ops as ops_report
from keras_resnets.export.verify import METRIC_NAMES
from keras_resnets.files import write_json
from keras_resnets.tasks import TASKS, get_task

UNRECORDED_TASK = TASKS[0]  # reports written before the task was recorded are classifiers'
UNRECORDED_METRIC = get_task(UNRECORDED_TASK).export_metric

SIDECAR_FORMAT = "keras_resnets.tflite/1"
INDEX_NAME = "report"


def sidecar_metadata(source, runner, *, artifact_name: str, preprocessing: bool) -> dict:
    """What the edge runner needs besides the flatbuffer: task, labels, input size, normalisation, quantization.

    ``task`` is ``"classification"`` (output ``(batch, classes)`` probabilities) or
    ``"segmentation"`` (output ``(batch, height, width, classes)`` per-pixel probabilities; the
    arg-max over the last axis is the label map).
    """

    def tensor(detail):
        scale, zero_point = detail["quantization"]
        quantized = np.dtype(detail["dtype"]) != np.float32
        return {"dtype": np.dtype(detail["dtype"]).name,
                "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if quantized else None}

    height, width, channels = source.input_shape
    output = {**tensor(runner.output), "kind": "probabilities", **source.task.sidecar_output(runner.output["shape"])}
    return {
        "format": SIDECAR_FORMAT,
        "model": source.name,
        "task": source.task.name,
        "artifact": artifact_name,
        "labels": list(source.class_names),
        "input": {
            **tensor(runner.input), "layout": "NHWC", "height": height, "width": width, "channels": channels,
            "batch": None if runner.dynamic_batch else int(runner.input["shape"][0]),
            # "raw": the model normalises itself; "normalized": feed (pixels - mean) / std
            "pixels": "raw" if preprocessing else "normalized",
            "normalization": {"mean": list(source.mean), "std": list(source.std)},
        },
        "output": output,
    }


def markdown_report(report: dict) -> str:
    """Human-readable version of one artifact's report."""
    lines = [f"# Export report: `{report['artifact']}`", ""]
    lines += [f"- source: `{report['source']}`", f"- format: {report['format']}, precision: "
              f"{report.get('precision', 'float32')}, batch: {report.get('batch') or 'dynamic'}, "
              f"input: {report.get('input_pixels', 'normalized')} pixels",
              f"- size: {report['size_bytes'] / 1024:.1f} KiB"]
    if report.get("size_vs_float32") is not None:
        lines.append(f"- size vs float32: {report['size_vs_float32']:.3f}x")
    lines += _accuracy_lines(report.get("accuracy"), report.get("task", UNRECORDED_TASK))
    lat = report.get("latency")
    if lat:
        spread = f", p10-p90 spread {lat['spread_ms']:.3f} ms" if "spread_ms" in lat else ""
        lines += ["", "## Latency (batch 1, this host)", "", f"median {lat['median_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms"
                  f"{spread} over {lat['runs']} runs after {lat['warmup']} warm-up, {lat['threads']} thread(s)"]
    ops = report.get("operators")
    if ops:
        lines += ["", "## Operators", "", "| op | count |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in ops["counts"].items()]
        lines += ["", f"builtin only: {ops['builtin_only']}; MUL/ADD/SUB: {ops['elementwise_ops']} "
                  f"(allowed {ops['elementwise_ops_allowed']}); SPACE_TO_BATCH/BATCH_TO_SPACE: "
                  f"{ops['space_to_batch_ops']}"]
    lines += tflite_metadata.markdown_lines(report.get("standard_metadata")) + ops_report.markdown_lines(report.get("delegates"))
    lines += ops_report.onnx_markdown_lines(report.get("onnx_ops"))
    if report.get("checks"):
        lines += ["", "## Checks", ""]
        lines += [f"- [{'x' if c['passed'] else ' '}] {c['name']}{'' if c.get('required', True) else ' (informational)'}: "
                  f"{c['detail']}" for c in report["checks"]]
    auto = report.get("auto")
    if auto:
        lines += ["", "## Automatic choice", "", auto["reason"], "",
                  "| variant | size KiB | median ms | spread ms | drop | passed |", "|---|---|---|---|---|---|"]
        lines += [f"| {c['variant']} | {_fmt(c['size_bytes'] and c['size_bytes'] / 1024, 1)} | {_fmt(c['median_ms'], 3)} | "
                  f"{_fmt(c.get('spread_ms'), 3)} | {_fmt(c['drop_points'])} | "
                  f"{'yes' if not c['failed_checks'] else ', '.join(c['failed_checks'])} |" for c in auto["candidates"]]
    lines += _keep_float_lines(report.get("keep_float"))
    lines += _sensitivity_lines(report.get("sensitivity"))
    lines += _optimization_lines(report.get("optimization"))
    return "\n".join(lines) + "\n"


def _accuracy_lines(acc, task: str) -> list:
    if not acc:
        return []
    metric = acc.get("metric", UNRECORDED_METRIC)
    label = METRIC_NAMES[metric]
    exported = acc.get(f"tflite_{metric}", acc.get(f"exported_{metric}", 0.0))
    lines = ["", f"## Accuracy (held-out, task: {task})", "",
              f"| samples | Keras {label} | exported {label} | drop (points) | agreement | max abs diff |",
              "|---|---|---|---|---|---|",
              f"| {acc['samples']} | {acc[f'keras_{metric}']:.2f}% | {exported:.2f}% | "
              f"{acc.get('drop_points', 0.0):.2f} | {acc.get('prediction_agreement', 100.0):.1f}% | "
              f"{acc['max_abs_diff']:.3g} |"]
    if "keras_pixel_accuracy" in acc:  # per-pixel tasks
        pixel = acc.get("tflite_pixel_accuracy", acc.get("exported_pixel_accuracy", 0.0))
        lines += ["", f"Pixel accuracy: Keras {acc['keras_pixel_accuracy']:.2f}%, exported {pixel:.2f}% over "
                  f"{acc['pixels']} labelled pixels (label {acc['ignore_label']} ignored); agreement is per pixel."]
    return lines


def _optimization_lines(optimization) -> list:
    if not optimization:
        return []
    lines = ["", "## QAT / pruning", ""]
    if optimization.get("path") == "keras":
        lines.append(f"- Keras 3 QAT (no bridge): {optimization['quantized_layers']} Conv2D/Dense layers fake-quantized, "
                     f"{optimization['folded_batchnorms']} BatchNormalization folded, fine-tuned in "
                     f"{optimization['fine_tune_seconds']:.1f} s")
    else:
        lines.append(f"- bridge (tf_keras rebuild) max abs diff before fine-tuning: "
                     f"{optimization['bridge_max_abs_diff']:.3g}")
    lines.append(f"- fine-tuned Keras {optimization['fine_tuned_keras_metric'].replace('_', ' ')}: "
                 f"{optimization['fine_tuned_keras']:.2f}%")
    if "pruning" in optimization:
        p = optimization["pruning"]
        lines.append(f"- pruning: target sparsity {p['target_sparsity']:.2f}, achieved {p['achieved_sparsity']:.3f} "
                     f"over {p['pruned_layers']} layers")
    if "qat" in optimization:
        lines.append(f"- QAT scheme: {optimization['qat']['scheme']}")
    return lines


def _keep_float_lines(selection) -> list:
    if not selection:
        return []
    lines = ["", "## Selective int8 (layers kept in float)", "",
             f"{len(selection['layers'])} layer(s) kept in float ({selection['mode']}): "
             + ", ".join(f"`{name}`" for name in selection["layers"])]
    if selection["search"]:
        lines += ["", "| layers in float | drop (points) |", "|---|---|"]
        lines += [f"| {step['kept']} | {step['drop_points']:.2f} |" for step in selection["search"]]
    return lines


def _sensitivity_lines(sensitivity) -> list:
    if not sensitivity:
        return []
    lines = ["", "## Per-layer int8 sensitivity (most harmful first)", "",
             f"Quantization debugger on {sensitivity['debug_samples']} calibration images: RMSE of each quantized "
             f"layer's output against the float model, divided by the layer's int8 scale (rounding alone gives "
             f"{sensitivity['rounding_only']:.2f}). Names work with `--keep-float`."
             + (f" Model: {sensitivity['subject']}." if sensitivity.get("subject") else "")]
    if sensitivity.get("chart"):
        lines += ["", f"![int8 error per layer]({sensitivity['chart']})"]
    lines += ["", "| rank | layer | op | RMSE / scale | RMSE | scale | max abs error |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['rank']} | `{r['layer']}` | {r['op']} | {r['rmse_over_scale']:.3f} | {r['rmse']:.3g} | "
              f"{r['scale']:.3g} | {r['max_abs_error']:.3g} |" for r in sensitivity["layers"]]
    return lines


def write_index(export_dir: Path) -> None:
    """Rewrite ``report.json`` / ``report.md``: one summary row per artifact report in the folder."""
    rows = []
    for path in sorted(export_dir.glob("*.report.json")):
        report = json.loads(path.read_text())
        acc, lat = report.get("accuracy") or {}, report.get("latency") or {}
        rows.append({"artifact": report["artifact"], "report": path.name, "task": report.get("task", UNRECORDED_TASK),
                     "precision": report.get("precision"), "size_bytes": report["size_bytes"],
                     **{metric: acc.get(f"tflite_{metric}") for metric in METRIC_NAMES},
                     "drop_points": acc.get("drop_points"), "median_ms": lat.get("median_ms")})
    write_json(export_dir / f"{INDEX_NAME}.json", {"exports": rows})
    lines = ["# Exports", "", "| artifact | precision | size KiB | top-1 / mIoU | drop | median ms | report |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        score = next((r[metric] for metric in METRIC_NAMES if r[metric] is not None), None)
        lines.append(f"| `{r['artifact']}` | {r['precision']} | {r['size_bytes'] / 1024:.1f} | {_fmt(score)} | "
                     f"{_fmt(r['drop_points'])} | {_fmt(r['median_ms'], 3)} | [{r['report']}]({r['report'][:-5]}.md) |")
    (export_dir / f"{INDEX_NAME}.md").write_text("\n".join(lines) + "\n")


def summary_line(report: dict) -> str:
    """One line: the exported metric vs Keras, the drop and the latency (``""`` when not measured)."""
    accuracy, latency = report.get("accuracy") or {}, report.get("latency") or {}
    metric = accuracy.get("metric", UNRECORDED_METRIC)
    exported = accuracy.get(f"tflite_{metric}")
    if exported is None:
        return ""
    line = (f"{METRIC_NAMES[metric]} {exported:.2f}% vs Keras {accuracy[f'keras_{metric}']:.2f}% "
            f"(drop {accuracy['drop_points']:.2f} points)")
    if "tflite_pixel_accuracy" in accuracy:  # per-pixel tasks
        line += f", pixel accuracy {accuracy['tflite_pixel_accuracy']:.2f}%"
    if latency:
        spread = f" (p10-p90 spread {latency['spread_ms']:.3f} ms)" if "spread_ms" in latency else ""
        line += (f"; host latency median {latency['median_ms']:.3f} ms{spread}, p90 {latency['p90_ms']:.3f} ms "
                 f"on {latency['threads']} thread(s)")
    return line


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
