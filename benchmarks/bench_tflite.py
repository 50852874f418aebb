"""TFLite speed and size on this CPU: the figures in docs/export.md.

1. Our ``resnet50`` exported for edge (static batch 1, full int8) vs keras.applications
   ``ResNet50`` converted the standard way (``model.export`` SavedModel with a dynamic batch, then
   ``TFLiteConverter`` full int8), same threads.
2. int8 vs float32 of our ``resnet50``: latency and file size. keras.applications ``ResNet50``
   converted the standard way in float32 too, to show the ratio is the runtime's, not the export's.
3. A dilated segmentation model (``dilated_resnet50_seg``, output stride 8) exported for edge vs a
   naive dynamic-batch conversion (Keras' one-liner ``model.export(format="litert")`` in float32;
   ``TFLiteConverter.from_keras_model`` with full int8 for the int8 pair): the naive graph keeps
   SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND around every dilated convolution and cannot fold the
   BatchNormalization behind them.

Every model's effective throughput (multiply-accumulates per second, from
``keras_resnets.models.profile``) is printed too: it shows how close each runs to the CPU's limit.

Weights are random (latency does not depend on them); the int8 calibration uses random images.
Latencies are measured in alternating rounds after all models are converted, so no model gains from
being timed first or last.
Run: ``.venv/bin/python benchmarks/bench_tflite.py [--threads 2] [--runs 50]``; writes
``benchmarks/results/bench_tflite.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def _measure_interleaved(flatbuffers: dict, threads: int, runs: int, rounds: int) -> dict:
    """Latency of every model, measured in alternating rounds so that drift hits all alike.

    Each round times every model once (``runs`` invokes after warm-up); a model's figure is the
    median over rounds of its per-round medians, its p90 the median of per-round p90s.
    """
    from keras_resnets.export.verify import TFLiteRunner

    runners = {name: TFLiteRunner(fb, num_threads=threads) for name, fb in flatbuffers.items()}
    per_round = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            per_round[name].append(runner.latency(runs=runs))
    results = {}
    for name, runner in runners.items():
        ops = runner.operators()
        rows = per_round[name]
        results[name] = {
            "median_ms": float(np.median([r["median_ms"] for r in rows])),
            "p90_ms": float(np.median([r["p90_ms"] for r in rows])),
            "runs": runs, "rounds": rounds, "threads": threads, "size_bytes": len(flatbuffers[name]),
            "space_to_batch_ops": ops.get("SPACE_TO_BATCH_ND", 0) + ops.get("BATCH_TO_SPACE_ND", 0),
            "elementwise_ops": ops.get("MUL", 0) + ops.get("ADD", 0) + ops.get("SUB", 0),
        }
    return results


def _ours(model, input_shape, precision: str, representative, workdir: Path, batch_size=1) -> bytes:
    from keras_resnets.export import convert

    path = workdir / f"{model.name}-{batch_size}"
    if not path.exists():
        convert.write_saved_model(model, path, input_shape=input_shape, batch_size=batch_size)
    return convert.convert_saved_model(path, precision, representative=representative)


def _standard(model, representative, workdir: Path, precision: str) -> bytes:
    """The usual recipe: ``model.export`` (dynamic batch) + TFLiteConverter (float32 or full integer)."""
    import tensorflow as tf

    path = workdir / f"{model.name}-standard"
    if not path.exists():
        model.export(str(path), format="tf_saved_model", verbose=False)
    converter = tf.lite.TFLiteConverter.from_saved_model(str(path))
    if precision == "int8":
        _full_integer(converter, representative)
    return converter.convert()


def _naive(model, representative, workdir: Path, precision: str) -> bytes:
    """What a user gets without the export path: Keras' one-liner (float32) or the converter on the model."""
    import tensorflow as tf

    if precision == "float32":
        path = workdir / f"{model.name}-naive.tflite"
        model.export(str(path), format="litert", verbose=False)
        return path.read_bytes()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    _full_integer(converter, representative)
    return converter.convert()


def _full_integer(converter, representative) -> None:
    import tensorflow as tf

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([representative[i:i + 1]] for i in range(len(representative)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8


def _ratio(results, slower: str, faster: str) -> float:
    return results[slower]["median_ms"] / results[faster]["median_ms"]


ROWS = ("ours_int8", "applications_int8", "ours_float32", "applications_float32",
        "seg_edge_float32", "seg_naive_float32", "seg_edge_int8", "seg_naive_int8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50, help="timed invokes per model per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating measurement rounds")
    parser.add_argument("--calibration", type=int, default=16, help="random calibration images")
    parser.add_argument("--seg-size", type=int, default=256, help="segmentation input height/width")
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "bench_tflite.json"))
    args = parser.parse_args(argv)

    import keras

    import keras_resnets
    from keras_resnets.models.profile import profile_model

    start = time.time()
    rng = np.random.default_rng(0)
    shape = (224, 224, 3)
    seg_shape = (args.seg_size, args.seg_size, 3)
    calibration = rng.normal(size=(args.calibration, *shape)).astype(np.float32)
    seg_calibration = rng.normal(size=(args.calibration, *seg_shape)).astype(np.float32)
    results = {"threads": args.threads, "runs": args.runs, "cpu_count": os.cpu_count(),
               "seg_model": {"name": "dilated_resnet50_seg", "input_shape": list(seg_shape)}}
    flatbuffers, macs = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        ours = keras_resnets.create_model("resnet50", input_shape=shape, classes=1000)
        flatbuffers["ours_int8"] = _ours(ours, shape, "int8", calibration, work)
        flatbuffers["ours_float32"] = _ours(ours, shape, "float32", None, work)
        reference = keras.applications.ResNet50(weights=None, input_shape=shape, classes=1000)
        flatbuffers["applications_int8"] = _standard(reference, calibration, work, "int8")
        flatbuffers["applications_float32"] = _standard(reference, None, work, "float32")
        seg = keras_resnets.create_model("dilated_resnet50_seg", input_shape=seg_shape)
        for precision in ("float32", "int8"):
            representative = seg_calibration if precision == "int8" else None
            flatbuffers[f"seg_edge_{precision}"] = _ours(seg, seg_shape, precision, representative, work)
            flatbuffers[f"seg_naive_{precision}"] = _naive(seg, seg_calibration, work, precision)
        for name, model in (("ours", ours), ("applications", reference), ("seg", seg)):
            macs[name] = profile_model(model).macs
    results.update(_measure_interleaved(flatbuffers, args.threads, args.runs, args.rounds))
    for row in ROWS:
        results[row]["gmacs"] = macs[row.split("_")[0]] / 1e9
        results[row]["gmac_per_s"] = results[row]["gmacs"] / (results[row]["median_ms"] / 1e3)
    results["ratios"] = {
        "ours_int8_vs_applications_int8_latency": _ratio(results, "ours_int8", "applications_int8"),
        "float32_vs_int8_speedup": _ratio(results, "ours_float32", "ours_int8"),
        "applications_float32_vs_int8_speedup": _ratio(results, "applications_float32", "applications_int8"),
        "int8_vs_float32_size": results["ours_int8"]["size_bytes"] / results["ours_float32"]["size_bytes"],
        "seg_naive_vs_edge_speedup_float32": _ratio(results, "seg_naive_float32", "seg_edge_float32"),
        "seg_naive_vs_edge_speedup_int8": _ratio(results, "seg_naive_int8", "seg_edge_int8"),
    }
    results["wall_s"] = time.time() - start
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    for key in ROWS:
        r = results[key]
        print(f"{key:22s} median {r['median_ms']:8.2f} ms  p90 {r['p90_ms']:8.2f} ms  "
              f"{r['size_bytes'] / 2**20:7.2f} MiB  {r['gmac_per_s']:6.1f} GMAC/s  "
              f"space/batch ops {r['space_to_batch_ops']}  MUL/ADD/SUB {r['elementwise_ops']}")
    for name, value in results["ratios"].items():
        print(f"{name}: {value:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
