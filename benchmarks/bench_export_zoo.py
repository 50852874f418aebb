"""Every registered model through the TFLite export at a small input size: the table in docs/export.md.

For each model of ``keras_resnets.list_models()`` (random seeded weights, ``--size`` pixels square,
10 classes; the BatchNormalization statistics are set from one batch of the calibration images,
see :func:`_batchnorm_statistics`), the project's export path (``serving_default`` SavedModel at batch 1, then
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

Run (long: seconds to many minutes per model, the two 1000-layer models last):
``nice -n 19 .venv/bin/python benchmarks/bench_export_zoo.py [--size 32] [--models 'cifar_*'] [--shard 1/2]``;
adds each model's row to ``benchmarks/results/bench_export_zoo.json`` as soon as it is measured
(under a file lock, so shards may run side by side), skips the models already there with the same
settings, so a killed run continues where it stopped, and prints the Markdown table of all rows.
"""
from __future__ import annotations

import argparse
import fcntl
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
METHOD = "bn-statistics-from-calibration-batch, keras-noise-floors"  # rows measured another way are measured again
DEEPEST = 500  # models with more layers than this run last
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
    _batchnorm_statistics(model, calibration)
    reference = np.asarray(model.predict(images, verbose=0, batch_size=8))
    add_softmax = not np.allclose(reference.sum(-1), 1.0, atol=1e-3)  # logits: the artifact outputs probabilities
    logit_max = float(np.max(np.abs(reference))) if add_softmax else None
    if add_softmax:
        reference = _softmax(reference)
    row = {"model": name, "task": "segmentation" if reference.ndim == 4 else "classification",
           "params": int(model.count_params()), "max_abs_logit": logit_max}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        convert.write_saved_model(model, Path(tmp) / "sm", input_shape=(size, size, 3), batch_size=1,
                                  add_softmax=add_softmax)
        float32 = convert.convert_saved_model(Path(tmp) / "sm", "float32")
        int8 = convert.convert_saved_model(Path(tmp) / "sm", "int8", representative=calibration)
    row["convert_seconds"] = round(time.perf_counter() - started, 1)
    row.update(_noise_floors(model, images, reference, rng))
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


def _batchnorm_statistics(model, images) -> None:
    """Set every BatchNormalization's moving mean and variance to its statistics on ``images``.

    Freshly initialised statistics (mean 0, variance 1) let a random residual network's sums grow
    with depth: logits in the hundreds, probabilities one-hot, a float32 difference of exactly 0
    that checks nothing. One forward pass in training mode with momentum 0 gives every layer the
    statistics of its real inputs, as training leaves them.
    """
    import keras

    norms = [layer for layer in model._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(images, training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


def _noise_floors(model, images, reference, rng) -> dict:
    """How much the Keras model itself moves under perturbations no export can avoid.

    ``keras_ulp_max_abs_diff``: max |Δ| of its outputs when each input value moves by at most one
    float32 rounding step (2**-23 relative), the size of the rounding differences a reordered but
    exact float32 graph makes at every layer; a deep network that amplifies them shows it here.
    ``keras_int8_input_agreement``: its top-1 agreement with itself when each input value moves by
    up to half an int8 step of the calibration range, the error of the int8 input alone; a model
    whose outputs are near-ties loses agreement here, before any quantization inside the graph.
    """
    ulp = images * (1 + rng.uniform(-1, 1, images.shape).astype(np.float32) * np.float32(2 ** -23))
    step = (images.max() - images.min()) / 255
    coarse = images + rng.uniform(-step / 2, step / 2, images.shape).astype(np.float32)
    outputs = [np.asarray(model.predict(x, verbose=0, batch_size=8)) for x in (ulp, coarse)]
    if not np.allclose(outputs[0].sum(-1), 1.0, atol=1e-3):
        outputs = [_softmax(o) for o in outputs]
    return {"keras_ulp_max_abs_diff": float(np.max(np.abs(outputs[0] - reference))),
            "keras_int8_input_agreement": float(np.mean(outputs[1].argmax(-1) == reference.argmax(-1)) * 100)}


def _cost(name: str) -> tuple:
    """Cheap models first (CIFAR-size families, then ImageNet ones, then segmentation; shallow before deep),
    the 1000-layer ones last, so that an interrupted run has covered the most models."""
    from keras_resnets.models.registry import get_entry

    family = get_entry(name).family
    depth = max([int(d) for d in re.findall(r"\d+", name)] or [0])
    rank = 3 if depth > DEEPEST else 2 if family == "segmentation" else 0 if name.startswith(("cifar_", "preact_")) else 1
    return rank, depth


def _softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def markdown(rows: list, size: int) -> str:
    lines = [f"| model | float32 max abs diff (bar {FLOAT32_BAR:g}) | Keras's own at 1 ulp of input | "
             "int8 top-1 agreement | Keras's own with int8-step input noise | Flex ops | int8 integer-only | "
             "GPU analyzer (float32) | flagged ops (float32 / int8) | conversion s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| `{r['model']}` | failed: {r['error']} | | | | | | | | |")
            continue
        lines.append(f"| `{r['model']}` | {r['float32_max_abs_diff']:.2g} {'ok' if r['float32_within_bar'] else 'OVER'} | "
                     f"{r['keras_ulp_max_abs_diff']:.2g} | {r['int8_top1_agreement']:.0f}% | "
                     f"{r['keras_int8_input_agreement']:.0f}% | {', '.join(r['flex_ops']) or 'none'} | "
                     f"{'yes' if r['int8_integer_only'] else 'no: ' + ', '.join(r['int8_float_ops'])} | "
                     f"{'compatible' if r['gpu_float32'] else 'not compatible'} | "
                     f"{', '.join(r['gpu_flagged_float32']) or '-'} / {', '.join(r['gpu_flagged_int8']) or '-'} | "
                     f"{r['convert_seconds']:.0f} |")
    return "\n".join(lines)


DOCS_BEGIN = "<!-- bench_export_zoo: begin (generated by --docs; do not edit) -->"
DOCS_END = "<!-- bench_export_zoo: end -->"
OWN_FLOOR_FACTOR = 2.5  # an over-bar difference within this factor of the Keras model's own is its own noise


def docs_section(rows: list, size: int, names: list) -> str:
    """The table and its reading for docs/export.md, computed from the rows (``names``: every model)."""
    rows = sorted(rows, key=lambda r: _cost(r["model"]))
    ok = [r for r in rows if "error" not in r]
    failed = [r["model"] for r in rows if "error" in r]
    missing = [n for n in sorted(names, key=_cost) if n not in {r["model"] for r in rows}]
    flex = [r["model"] for r in ok if r["flex_ops"]]
    within = [r for r in ok if r["float32_within_bar"]]
    over = [r for r in ok if not r["float32_within_bar"]]
    own = [r for r in over if r["float32_max_abs_diff"] <= OWN_FLOOR_FACTOR * r["keras_ulp_max_abs_diff"]]
    lines = [f"{len(rows)} of {len(names)} models measured, {len(failed)} failed to convert"
             + (f" ({', '.join(failed)})" if failed else "") + ".", "", markdown(rows, size), ""]
    lines.append(f"- **Flex ops: {'none' if not flex else ', '.join(flex)}** in the {len(ok)} models converted "
                 "(the converter is asked for builtins only). "
                 f"int8 graphs integer-only with static shapes: {sum(r['int8_integer_only'] for r in ok)} of {len(ok)}; "
                 f"float32 graphs the Analyzer calls GPU-compatible: {sum(r['gpu_float32'] for r in ok)} of {len(ok)}, "
                 f"with {sum(bool(r['gpu_flagged_float32'] or r['gpu_flagged_int8']) for r in ok)} flagging any op.")
    lines.append(f"- **float32:** {len(within)} of {len(ok)} within {FLOAT32_BAR:g}. Over it: "
                 + ", ".join(f"`{r['model']}` {r['float32_max_abs_diff']:.2g} (Keras's own at one rounding step: "
                             f"{r['keras_ulp_max_abs_diff']:.2g})" for r in over) + ".")
    if over:
        lines.append(f"  {len(own)} of these {len(over)} are within {OWN_FLOOR_FACTOR}x of the Keras model's own "
                     "movement at one rounding step of the input: these random networks amplify a rounding "
                     "difference through their depth, so no float32 export of these weights can meet the bar"
                     + ("" if len(own) == len(over) else "; not explained that way: "
                        + ", ".join(f"`{r['model']}`" for r in over if r not in own)) + ". Trained models' figures "
                     "are in each export report (float32 parity bar 1e-4 there).")
    classifiers = [r for r in ok if r["task"] == "classification"]
    gaps = sorted(classifiers, key=lambda r: r["int8_top1_agreement"] - r["keras_int8_input_agreement"])[:4]
    lines.append("- **int8** (random weights: no accuracy figure; trained-model int8 accuracy is in each export "
                 "report): agreement is low where the Keras model's own agreement under int8-step input noise is "
                 f"low (near-tie outputs). Both 100 % in {sum(r['int8_top1_agreement'] == 100 == r['keras_int8_input_agreement'] for r in classifiers)} "
                 f"of {len(classifiers)} classifiers. Widest gaps: "
                 + ", ".join(f"`{r['model']}` {r['int8_top1_agreement']:.0f} % vs {r['keras_int8_input_agreement']:.0f} %"
                             for r in gaps) + ".")
    segmenters = [r for r in ok if r["task"] == "segmentation"]
    if segmenters:
        lines.append("- **Segmentation** (per pixel): " + ", ".join(
            f"`{r['model']}` {r['int8_top1_agreement']:.0f} % (own {r['keras_int8_input_agreement']:.0f} %)"
            for r in segmenters) + ".")
        flat = [r for r in segmenters if r.get("max_abs_logit") is not None and r["max_abs_logit"] < 1e-3]
        if flat:
            lines.append("  " + ", ".join(f"`{r['model']}`" for r in flat) + ": the random logits all lie within "
                         f"{max(r['max_abs_logit'] for r in flat):.1g} of 0 (a VGG-16 front-end has no "
                         "BatchNormalization to restore the scale a random initialisation loses), far below the int8 "
                         "output's step of 1/256, so int8 cannot order them; the float32 artifacts match Keras to "
                         + ", ".join(f"{r['float32_max_abs_diff']:.0g}" for r in flat) + ".")
    if missing:
        lines += ["", "Not measured yet (rerunning the command measures them; the 1000-layer models run last): "
                  + ", ".join(f"`{n}`" for n in missing) + "."]
    return "\n".join(lines)


def write_docs(path: Path, section: str) -> None:
    """Replace the text between the markers in ``path`` by ``section``."""
    text = path.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        raise SystemExit(f"{path}: no {DOCS_BEGIN!r} ... {DOCS_END!r} markers")
    head, rest = text.split(DOCS_BEGIN, 1)
    path.write_text(f"{head}{DOCS_BEGIN}\n{section}\n{DOCS_END}{rest.split(DOCS_END, 1)[1]}")


def _settings(size: int) -> dict:
    return {"size": size, "batch": BATCH, "calibration": CALIBRATION, "float32_bar": FLOAT32_BAR, "method": METHOD}


def _update(path: Path, size: int, row: dict | None = None) -> list:
    """Under a lock, read the rows measured with this run's settings, add ``row`` (replacing an
    earlier one of the same model), write the file back atomically and return the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = os.open(path.parent, os.O_RDONLY)  # the lock: the results folder itself, no extra file
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        same = all(data.get(k) == v for k, v in _settings(size).items())
        rows = data.get("models", []) if same else []
        if row is None:
            return rows
        rows = [r for r in rows if r["model"] != row["model"]] + [row]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**_settings(size), "cpu": platform.processor() or platform.machine(),
                                   "models": rows}, indent=2) + "\n")
        tmp.replace(path)
        return rows
    finally:
        os.close(folder)


def main() -> None:
    import fnmatch

    import keras_resnets

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32, help="input height and width (default 32)")
    parser.add_argument("--models", default="*", help="shell pattern over the registry (default: all)")
    parser.add_argument("--shard", default="1/1", help="K/N: measure every N-th model from the K-th (default 1/1)")
    parser.add_argument("--redo", action="store_true", help="measure again the models already in the results")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--docs", type=Path, help="rewrite this file's generated section (docs/export.md) from the "
                        "results and measure nothing")
    args = parser.parse_args()
    if args.docs:
        write_docs(args.docs, docs_section(_update(args.output, args.size), args.size, keras_resnets.list_models()))
        print(f"{args.docs}: zoo section rewritten from {args.output}")
        return
    k, n = (int(x) for x in args.shard.split("/"))
    names = sorted((m for m in keras_resnets.list_models() if fnmatch.fnmatch(m, args.models)), key=_cost)
    done = set() if args.redo else {r["model"] for r in _update(args.output, args.size) if "error" not in r}
    todo = [name for name in names[k - 1::n] if name not in done]
    print(f"{len(names)} models, {len(names) - len(todo)} already measured or in other shards, "
          f"{len(todo)} to measure", flush=True)
    for i, name in enumerate(todo, 1):
        started = time.perf_counter()
        try:
            row = check_model(name, args.size)
        except Exception as err:  # a model that does not convert is a result, not a crash
            row = {"model": name, "error": str(err).splitlines()[0][:200]}
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows = _update(args.output, args.size, row)
        print(f"[{i}/{len(todo)}] {name}: "
              + (row.get("error") or f"float32 max|d| {row['float32_max_abs_diff']:.2g}, flex {row['flex_ops'] or 'none'}, "
                 f"int8 agreement {row['int8_top1_agreement']:.0f}%, integer-only {row['int8_integer_only']}, "
                 f"GPU flagged {row['gpu_flagged_float32'] or '-'}") + f" ({row['seconds']} s)", flush=True)
    rows = sorted(_update(args.output, args.size), key=lambda r: _cost(r["model"]))
    print(markdown(rows, args.size))


if __name__ == "__main__":
    main()
