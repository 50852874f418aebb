"""Reports (JSON + Markdown) next to each artifact, the export folder's index, and the edge sidecar."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SIDECAR_FORMAT = "keras_resnets.tflite/1"
INDEX_NAME = "report"


def sidecar_metadata(source, runner, *, artifact_name: str, preprocessing: bool) -> dict:
    """What the edge runner needs besides the flatbuffer: labels, input size, normalisation, quantization."""

    def tensor(detail):
        scale, zero_point = detail["quantization"]
        quantized = np.dtype(detail["dtype"]) != np.float32
        return {"dtype": np.dtype(detail["dtype"]).name,
                "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if quantized else None}

    height, width, channels = source.input_shape
    return {
        "format": SIDECAR_FORMAT,
        "model": source.name,
        "artifact": artifact_name,
        "labels": list(source.class_names),
        "input": {
            **tensor(runner.input), "layout": "NHWC", "height": height, "width": width, "channels": channels,
            "batch": None if runner.dynamic_batch else int(runner.input["shape"][0]),
            # "raw": the model normalises itself; "normalized": feed (pixels - mean) / std
            "pixels": "raw" if preprocessing else "normalized",
            "normalization": {"mean": list(source.mean), "std": list(source.std)},
        },
        "output": {**tensor(runner.output), "kind": "probabilities"},
    }


def write_json(path: Path, payload: dict) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_jsonable) + "\n")


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def markdown_report(report: dict) -> str:
    """Human-readable version of one artifact's report."""
    lines = [f"# Export report: `{report['artifact']}`", ""]
    lines += [f"- source: `{report['source']}`", f"- format: {report['format']}, precision: "
              f"{report.get('precision', 'float32')}, batch: {report.get('batch') or 'dynamic'}, "
              f"input: {report.get('input_pixels', 'normalized')} pixels",
              f"- size: {report['size_bytes'] / 1024:.1f} KiB"]
    if report.get("size_vs_float32") is not None:
        lines.append(f"- size vs float32: {report['size_vs_float32']:.3f}x")
    acc = report.get("accuracy")
    if acc:
        lines += ["", "## Accuracy (held-out)", "", "| samples | Keras top-1 | exported top-1 | drop (points) | "
                  "agreement | max abs diff |", "|---|---|---|---|---|---|",
                  f"| {acc['samples']} | {acc['keras_top1']:.2f}% | {acc.get('tflite_top1', acc.get('exported_top1', 0)):.2f}% | "
                  f"{acc.get('drop_points', 0.0):.2f} | {acc.get('prediction_agreement', 100.0):.1f}% | "
                  f"{acc['max_abs_diff']:.3g} |"]
    lat = report.get("latency")
    if lat:
        lines += ["", "## Latency (batch 1)", "", f"median {lat['median_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms "
                  f"over {lat['runs']} runs after {lat['warmup']} warm-up, {lat['threads']} thread(s)"]
    ops = report.get("operators")
    if ops:
        lines += ["", "## Operators", "", "| op | count |", "|---|---|"]
        lines += [f"| {name} | {count} |" for name, count in ops["counts"].items()]
        lines += ["", f"builtin only: {ops['builtin_only']}; MUL/ADD/SUB: {ops['elementwise_ops']} "
                  f"(allowed {ops['elementwise_ops_allowed']}); SPACE_TO_BATCH/BATCH_TO_SPACE: "
                  f"{ops['space_to_batch_ops']}"]
    if report.get("checks"):
        lines += ["", "## Checks", ""]
        lines += [f"- [{'x' if c['passed'] else ' '}] {c['name']}{'' if c.get('required', True) else ' (informational)'}: "
                  f"{c['detail']}" for c in report["checks"]]
    auto = report.get("auto")
    if auto:
        lines += ["", "## Automatic choice", "", auto["reason"], "", "| variant | size KiB | median ms | drop | passed |",
                  "|---|---|---|---|---|"]
        lines += [f"| {c['variant']} | {c['size_bytes'] / 1024:.1f} | {c['median_ms']:.3f} | {c['drop_points']:.2f} | "
                  f"{'yes' if not c['failed_checks'] else ', '.join(c['failed_checks'])} |" for c in auto["candidates"]]
    optimization = report.get("optimization")
    if optimization:
        lines += ["", "## QAT / pruning", "", f"- bridge (tf_keras rebuild) max abs diff before fine-tuning: "
                  f"{optimization['bridge_max_abs_diff']:.3g}",
                  f"- fine-tuned Keras top-1: {optimization['fine_tuned_keras_top1']:.2f}%"]
        if "pruning" in optimization:
            p = optimization["pruning"]
            lines.append(f"- pruning: target sparsity {p['target_sparsity']:.2f}, achieved {p['achieved_sparsity']:.3f} "
                         f"over {p['pruned_layers']} layers")
        if "qat" in optimization:
            lines.append(f"- QAT scheme: {optimization['qat']['scheme']}")
    return "\n".join(lines) + "\n"


def write_index(export_dir: Path) -> None:
    """Rewrite ``report.json`` / ``report.md``: one summary row per artifact report in the folder."""
    rows = []
    for path in sorted(export_dir.glob("*.report.json")):
        report = json.loads(path.read_text())
        acc, lat = report.get("accuracy") or {}, report.get("latency") or {}
        rows.append({"artifact": report["artifact"], "report": path.name, "precision": report.get("precision"),
                     "size_bytes": report["size_bytes"], "top1": acc.get("tflite_top1"),
                     "drop_points": acc.get("drop_points"), "median_ms": lat.get("median_ms")})
    write_json(export_dir / f"{INDEX_NAME}.json", {"exports": rows})
    lines = ["# Exports", "", "| artifact | precision | size KiB | top-1 | drop | median ms | report |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `{r['artifact']}` | {r['precision']} | {r['size_bytes'] / 1024:.1f} | {_fmt(r['top1'])} | "
                     f"{_fmt(r['drop_points'])} | {_fmt(r['median_ms'], 3)} | [{r['report']}]({r['report'][:-5]}.md) |")
    (export_dir / f"{INDEX_NAME}.md").write_text("\n".join(lines) + "\n")


def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
