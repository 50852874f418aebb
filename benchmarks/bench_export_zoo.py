"""Every registered model through the TFLite export at a small input size: the table in docs/export.md.

For each model of ``keras_resnets.list_models()`` (random seeded weights, ``--size`` pixels square,
10 classes), the project's export path (``serving_default`` SavedModel at batch 1, then
``TFLiteConverter`` with builtin ops only) writes float32 and full-integer int8 flatbuffers, and
records:

- float32 max |output difference| vs the Keras model on a fixed batch (bar 5e-5, keras-hub's own
  bound for its ResNets);
- whether any op is a Flex (SELECT_TF_OPS) op (the converter is asked for builtins only, so a model
  that needs one fails to convert and the error is recorded);
- int8 top-1 agreement with the Keras model on the same fixed batch (random weights: the figure
  shows the quantization path is sound, not an accuracy);
- the ops ``tf.lite.experimental.Analyzer`` flags for the GPU delegate, and whether the int8 graph is
  integer builtins only with static shapes.

Run (long: a few minutes per deep model on two cores):
``nice -n 19 .venv/bin/python benchmarks/bench_export_zoo.py [--size 32] [--models 'cifar_*']``;
writes ``benchmarks/results/bench_export_zoo.json`` after every model and prints the Markdown table.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

FLOAT32_BAR = 5e-5
BATCH = 32
CALIBRATION = 32
RESULTS = Path(__file__).resolve().parent / "results" / "bench_export_zoo.json"


def check_model(name: str, size: int) -> dict:
    """Export ``name`` to float32 and int8 and measure it (see the module docstring)."""
    import keras

    import keras_resnets
    from keras_resnets.export import convert
    from keras_resnets.export.ops import delegate_report
    from keras_resnets.export.verify import TFLiteRunner

    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model(name, input_shape=(size, size, 3), classes=10)
    rng = np.random.default_rng(0)
    images = rng.normal(size=(BATCH, size, size, 3)).astype(np.float32)
    calibration = rng.normal(size=(CALIBRATION, size, size, 3)).astype(np.float32)
    reference = np.asarray(model.predict(images, verbose=0, batch_size=8))
    add_softmax = not np.allclose(reference.sum(-1), 1.0, atol=1e-3)  # logits: the artifact outputs probabilities
    if add_softmax:
        reference = _softmax(reference)
    row = {"model": name, "task": "segmentation" if reference.ndim == 4 else "classification",
           "params": int(model.count_params())}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        convert.write_saved_model(model, Path(tmp) / "sm", input_shape=(size, size, 3), batch_size=1,
                                  add_softmax=add_softmax)
        float32 = convert.convert_saved_model(Path(tmp) / "sm", "float32")
        int8 = convert.convert_saved_model(Path(tmp) / "sm", "int8", representative=calibration)
    row["convert_seconds"] = round(time.perf_counter() - started, 1)
    out32 = TFLiteRunner(float32).predict(images)
    out8 = TFLiteRunner(int8).predict(images)
    row["float32_max_abs_diff"] = float(np.max(np.abs(out32 - reference)))
    row["float32_within_bar"] = row["float32_max_abs_diff"] <= FLOAT32_BAR
    row["int8_top1_agreement"] = float(np.mean(out8.argmax(-1) == reference.argmax(-1)) * 100)
    report32, report8 = delegate_report(float32, full_integer=False), delegate_report(int8, full_integer=True)
    row["flex_ops"] = sorted(set(report32["flex_ops"] + report8["flex_ops"]))
    row["ops_float32"] = report32["op_count"]
    row["gpu_float32"] = report32["gpu"]["compatible"]
    row["gpu_flagged_float32"] = sorted({f["op"] for f in report32["gpu"]["flagged"]})
    row["gpu_flagged_int8"] = sorted({f["op"] for f in report8["gpu"]["flagged"]})
    row["int8_integer_only"] = report8["integer_only"]["passed"]
    row["int8_float_ops"] = report8["integer_only"]["float_ops"]
    row["sizes_kib"] = {"float32": round(len(float32) / 1024, 1), "int8": round(len(int8) / 1024, 1)}
    return row


def _cost(name: str) -> tuple:
    """Cheap models first (CIFAR-size families, then ImageNet ones, then segmentation; shallow before deep),
    so that an interrupted run has covered the most models."""
    from keras_resnets.models.registry import get_entry

    family = get_entry(name).family
    rank = 2 if family == "segmentation" else 0 if name.startswith(("cifar_", "preact_")) else 1
    return rank, max([int(d) for d in re.findall(r"\d+", name)] or [0])


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def markdown(rows: list, size: int) -> str:
    lines = [f"| model | float32 max abs diff (bar {FLOAT32_BAR:g}) | Flex ops | int8 top-1 agreement | "
             "int8 integer-only | GPU analyzer (float32) | flagged ops (float32 / int8) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['model']}` | failed: {r['error']} | | | | | |")
            continue
        lines.append(f"| `{r['model']}` | {r['float32_max_abs_diff']:.2g} {'ok' if r['float32_within_bar'] else 'OVER'} | "
                     f"{', '.join(r['flex_ops']) or 'none'} | {r['int8_top1_agreement']:.0f}% | "
                     f"{'yes' if r['int8_integer_only'] else 'no: ' + ', '.join(r['int8_float_ops'])} | "
                     f"{'compatible' if r['gpu_float32'] else 'not compatible'} | "
                     f"{', '.join(r['gpu_flagged_float32']) or '-'} / {', '.join(r['gpu_flagged_int8']) or '-'} |")
    return "\n".join(lines)


def main() -> None:
    import fnmatch

    import keras_resnets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="input height and width (default 32)")
    parser.add_argument("--models", default="*", help="shell pattern over the registry (default: all)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    names = sorted((n for n in keras_resnets.list_models() if fnmatch.fnmatch(n, args.models)), key=_cost)
    rows = []
    for i, name in enumerate(names, 1):
        started = time.perf_counter()
        try:
            row = check_model(name, args.size)
        except Exception as err:  # a model that does not convert is a result, not a crash
            row = {"model": name, "error": str(err).splitlines()[0][:200]}
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(f"[{i}/{len(names)}] {name}: "
              + (row.get("error") or f"float32 max|d| {row['float32_max_abs_diff']:.2g}, flex {row['flex_ops'] or 'none'}, "
                 f"int8 agreement {row['int8_top1_agreement']:.0f}%, integer-only {row['int8_integer_only']}, "
                 f"GPU flagged {row['gpu_flagged_float32'] or '-'}") + f" ({row['seconds']} s)", flush=True)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"size": args.size, "batch": BATCH, "calibration": CALIBRATION,
                                           "float32_bar": FLOAT32_BAR, "cpu": platform.processor() or platform.machine(),
                                           "models": rows}, indent=2) + "\n")
    print(markdown(rows, args.size))


if __name__ == "__main__":
    main()
