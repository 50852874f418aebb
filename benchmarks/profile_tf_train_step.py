"""Where the time of one Keras training step goes on the TensorFlow backend: a per-op profile.

Builds the model, compiles it as ``keras-resnets train`` does (``compile_model``: SGD with momentum, the
recipe's schedule and L2 penalty, the task's loss and accuracy metric), trains a few warm-up steps, then
records ``--steps`` steps of ``Model.fit`` with TensorFlow's profiler and parses the trace
(``*.xplane.pb``, TensorFlow's own protobuf) into a table: time per category per step —

* forward / backward of each layer type (convolution, batch normalisation, ReLU, addition, dense, ...),
  found from the op's name scope (``.../<layer name>/...``, ``gradient_tape/...`` for the backward pass);
* the optimizer update and the loss/metric ops;
* ``input: waiting for the next batch`` (``IteratorGetNext`` on the step's threads) and, beside it, the
  time the tf.data threads spent producing batches (they share the same cores);
* ``host: no op running`` — the step's wall time during which no kernel ran on any thread (Python,
  dispatch, executor scheduling: the per-step overhead a faster kernel cannot remove).

Op time is summed over threads; with two inter-op threads running kernels side by side the category sum
can exceed the wall time. Shares are of the summed op time. Feeds: ``memory`` (one batch held as a
tensor: the step alone) or ``pipeline`` (the package's tf.data training pipeline on ``textured_digits``
with ``crop_flip``, as ``train`` feeds it).

    .venv/bin/python benchmarks/profile_tf_train_step.py                 # the two README workloads
    .venv/bin/python benchmarks/profile_tf_train_step.py --workload cifar_resnet20:32:128 --feed pipeline

Results: ``benchmarks/results/profile_tf_train_step.json`` (the table and the 25 costliest op types).
TensorFlow's oneDNN kernels are on unless ``TF_ENABLE_ONEDNN_OPTS`` is set (the package's default).
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results" / "profile_tf_train_step.json"
DEFAULT_WORKLOADS = ("cifar_resnet20:32:128", "resnet50:64:32")

import bench_cpu_training  # noqa: E402  (cpu_name, classes_of)

# op types that are the kernel of a layer type, whatever name scope they sit in
_CONV_BACKWARD = re.compile(r"Conv2DBackprop")
_INPUT_WAIT = ("IteratorGetNext", "IteratorGetNextAsOptional", "OptionalGetValue", "OptionalHasValue")


def layer_classes(model) -> dict:
    """Layer name -> its class name, for every layer of ``model`` (nested models included)."""
    names = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        names[layer.name] = type(layer).__name__
    return names


def categorise(op_name: str, op_type: str, layers: dict) -> str:
    """The category of one executed op (see the module docstring)."""
    if op_type in _INPUT_WAIT:
        return "input: waiting for the next batch"
    scopes = op_name.split(":")[0].split("/")
    if any(s.lower() in ("sgd", "adam") or s.startswith("SGD") for s in scopes) or "optimizer" in op_name.lower():
        return "optimizer update"
    backward = "gradient_tape" in scopes or _CONV_BACKWARD.search(op_type) is not None or op_type.endswith("Grad")
    for scope in scopes:
        cls = layers.get(scope) or layers.get(re.sub(r"_\d+$", "", scope))
        if cls:
            return f"{cls} {'backward' if backward else 'forward'}"
    if any(s.startswith(("compile_loss", "compile_metrics", "loss", "sparse_categorical", "metrics")) for s in scopes):
        return "loss and metrics" + (" (backward)" if backward else "")
    if "gradient_tape" in scopes:
        return "other backward (L2 penalty, loss)"
    return "other"


def _union_ps(intervals) -> int:
    """Total length of the union of ``(start, end)`` intervals."""
    total, end_seen = 0, None
    for start, end in sorted(intervals):
        if end_seen is None or start > end_seen:
            total += end - start
            end_seen = end
        elif end > end_seen:
            total += end - end_seen
            end_seen = end
    return total


def parse_trace(logdir: str, layers: dict, steps: int) -> dict:
    """Per-step seconds per category, per op type, and the step's wall/host split, from the xplane file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    files = sorted(Path(logdir).glob("plugins/profile/*/*.xplane.pb"))
    if not files:
        raise RuntimeError(f"the profiler wrote no trace under {logdir}")
    space = xplane_pb2.XSpace()
    space.ParseFromString(files[-1].read_bytes())
    host = next(p for p in space.planes if p.name == "/host:CPU")
    per_category, per_type = collections.Counter(), collections.Counter()
    busy, producing, step_ps = [], 0, 0
    for line in host.lines:
        for event in line.events:
            meta = host.event_metadata[event.metadata_id]
            start = line.timestamp_ns * 1000 + event.offset_ps
            if line.name == "python" and meta.name.startswith("EagerLocalExecute: __inference_one_step_on_iterator") \
                    or line.name == "python" and meta.name.startswith("EagerLocalExecute: __inference_multi_step_on_iterator"):
                step_ps += event.duration_ps
            elif line.name.startswith("tf_data_iterator_resource") and meta.name == "PrefetchProduce":
                producing += event.duration_ps
            elif line.name.startswith("tf_Compute") and ":" in meta.name and meta.display_name:
                per_category[categorise(meta.name, meta.display_name, layers)] += event.duration_ps
                per_type[meta.display_name] += event.duration_ps
                busy.append((start, start + event.duration_ps))
    if not step_ps:
        raise RuntimeError("no train step found in the trace")
    ops_ps = sum(per_category.values())
    idle_ps = step_ps - _union_ps(busy)
    s = 1e-12 / steps
    return {
        "step_s": step_ps * s,
        "ops_summed_s": ops_ps * s,
        "host_no_op_running_s": max(idle_ps, 0) * s,
        "input_producer_threads_s": producing * s,
        "categories_s": {k: v * s for k, v in per_category.most_common()},
        "op_types_s": {k: v * s for k, v in per_type.most_common(25)},
    }


def build(model_name: str, size: int, batch: int, feed: str, fused_batch_norm: bool = True, lr: float = 0.1):
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_resnets
    from keras_resnets.training import build as build_lib
    from keras_resnets.training import recipes

    classes = bench_cpu_training.classes_of(model_name)
    model = keras_resnets.create_model(model_name, input_shape=(size, size, 3), classes=classes)
    recipe = dataclasses.replace(recipes.get_recipe("cifar10_study"), lr=lr)
    build_lib.compile_model(model, recipe, total_steps=10_000,
                            fused_batch_norm=fused_batch_norm)
    if feed == "memory":
        rng = np.random.default_rng(0)
        x = rng.normal(size=(batch, size, size, 3)).astype("float32")
        y = rng.integers(0, classes, size=(batch,)).astype("int32")
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
    else:
        from keras_resnets.data import load_dataset

        datasets = load_dataset("textured_digits", batch_size=batch, augment="crop_flip", image_size=(size, size),
                                channels=3)
        data = datasets.train(1000).repeat()
    keras.utils.set_random_seed(0)
    return model, data


def gradient_errors_against_float64(model_name: str, size: int, keras_model, fused_model, x, y) -> dict:
    """Relative error of each float32 path's first gradient against the same model's in float64 (Keras' BN
    code, same weights and batch): the global one (norm of the difference over the norm) and the largest
    per variable. The two float32 paths differ by rounding; this says how much rounding the net amplifies."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_resnets

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        reference = keras_resnets.create_model(model_name, input_shape=(size, size, 3),
                                               classes=bench_cpu_training.classes_of(model_name))
    finally:
        keras.config.set_dtype_policy(previous)
    reference.set_weights([w.astype("float64") for w in keras_model.get_weights()])

    def gradients(model, dtype):
        with tf.GradientTape() as tape:
            out = model(tf.constant(x.astype(dtype)), training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, out))
        return [g.numpy().astype("float64") for g in tape.gradient(loss, model.trainable_weights)]

    exact = gradients(reference, "float64")
    norm = np.sqrt(sum(np.sum(g ** 2) for g in exact))
    errors = {}
    for name, model in (("keras", keras_model), ("fused", fused_model)):
        approx = gradients(model, "float32")
        errors[name] = {
            "global": float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(exact, approx))) / norm),
            "largest_per_variable": float(max(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-30)
                                              for a, b in zip(exact, approx)))}
    return errors


def compare_batch_norm(model_name: str, size: int, batch: int, rounds: int, steps: int) -> dict:
    """Keras' BN against the fused kernel in one process: same weights, same batch, alternating timed rounds.

    Returns images/s (wall clock) and process CPU seconds per step of each (median, min, max): on a
    shared machine the wall clock measures the scheduler as much as the step, the CPU time much less.
    Numerics: the largest loss difference over the first steps and of the moving statistics after them,
    at lr 0.01 (at the recipe's 0.1 random labels blow the loss up within a few steps, and any rounding
    difference with it).
    """
    import statistics

    import numpy as np

    keras_model, data = build(model_name, size, batch, "memory", fused_batch_norm=False, lr=0.01)
    fused_model, _ = build(model_name, size, batch, "memory", lr=0.01)
    fused_model.set_weights(keras_model.get_weights())
    (x, y), = data.take(1).as_numpy_iterator()
    gradient_errors = gradient_errors_against_float64(model_name, size, keras_model, fused_model, x, y)
    losses = {name: [float(m.train_on_batch(x, y)[0]) for _ in range(steps)]
              for name, m in (("keras", keras_model), ("fused", fused_model))}
    gap = max(abs(a - b) / max(abs(a), 1e-12) for a, b in zip(losses["keras"], losses["fused"]))
    moving = [(a.numpy(), b.numpy()) for a, b in zip(keras_model.non_trainable_weights, fused_model.non_trainable_weights)]
    moving_gap = max(float(np.max(np.abs(a - b)) / max(np.max(np.abs(a)), 1e-12)) for a, b in moving)  # of each vector's scale
    rates, cpu = {"keras": [], "fused": []}, {"keras": [], "fused": []}
    for r in range(rounds):
        order = (("keras", keras_model), ("fused", fused_model))
        for name, m in order if r % 2 == 0 else order[::-1]:
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(steps):
                loss = m.train_on_batch(x, y)
            float(np.asarray(loss[0]))
            rates[name].append(steps * batch / (time.perf_counter() - start))
            cpu[name].append((time.process_time() - start_cpu) / steps)
        print(f"  round {r + 1}/{rounds}: keras BN {rates['keras'][-1]:.1f}, fused BN {rates['fused'][-1]:.1f} "
              f"images/s; CPU s/step {cpu['keras'][-1]:.2f}, {cpu['fused'][-1]:.2f} (load {os.getloadavg()[0]:.1f})",
              flush=True)
    summary = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in rates.items()}
    cpu_summary = {k: {"median": statistics.median(v), "min": min(v), "max": max(v)} for k, v in cpu.items()}
    return {"images_per_s": summary, "speed_up": summary["fused"]["median"] / summary["keras"]["median"],
            "cpu_s_per_step": cpu_summary,
            "cpu_time_ratio": cpu_summary["keras"]["median"] / cpu_summary["fused"]["median"],
            "losses": losses, "largest_relative_loss_difference": gap,
            "gradient_error_against_float64": gradient_errors,
            "largest_relative_moving_statistic_difference": moving_gap}


def profile(model_name: str, size: int, batch: int, feed: str, steps: int, warmup: int, fused: bool) -> dict:
    import tensorflow as tf

    model, data = build(model_name, size, batch, feed, fused_batch_norm=fused)
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)  # trace the function, warm the kernels
    start = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    untraced = (time.perf_counter() - start) / steps
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        tf.profiler.experimental.stop()
        result = parse_trace(logdir, layer_classes(model), steps)
    result["untraced_step_s"] = untraced
    result["images_per_s_untraced"] = batch / untraced
    return result


def table(result: dict) -> str:
    ops = result["ops_summed_s"]
    rows = ["| per step | ms | share of op time |", "|---|---|---|"]
    for name, sec in result["categories_s"].items():
        rows.append(f"| {name} | {sec * 1e3:.1f} | {sec / ops:.0%} |")
    rows.append(f"| **op time, summed over threads** | {ops * 1e3:.1f} | |")
    rows.append(f"| host: no op running (of the step's wall time) | {result['host_no_op_running_s'] * 1e3:.1f} | |")
    rows.append(f"| tf.data threads producing batches (beside the step) | {result['input_producer_threads_s'] * 1e3:.1f} | |")
    rows.append(f"| **step wall time** (traced; untraced {result['untraced_step_s'] * 1e3:.0f}) | "
                f"{result['step_s'] * 1e3:.1f} | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", metavar="MODEL:SIZE:BATCH",
                        help=f"repeatable (default: {' and '.join(DEFAULT_WORKLOADS)})")
    parser.add_argument("--feed", choices=("memory", "pipeline"), action="append",
                        help="repeatable (default: both)")
    parser.add_argument("--steps", type=int, default=3, help="profiled steps (default 3)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-norm", choices=("fused", "keras"), default="fused",
                        help="fused (the package's training default on TensorFlow) or Keras' own BN code")
    parser.add_argument("--compare-batch-norm", type=int, metavar="ROUNDS",
                        help="instead of profiling: time Keras' BN against the fused kernel in alternating rounds")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()

    from keras_resnets.environment import apply_tensorflow_defaults, import_tensorflow_quietly

    apply_tensorflow_defaults()
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import_tensorflow_quietly()
    if os.environ["KERAS_BACKEND"] != "tensorflow":
        raise SystemExit(f"this profiles the TensorFlow backend; KERAS_BACKEND is {os.environ['KERAS_BACKEND']!r}")
    load = os.getloadavg()[0]
    print(f"CPU: {bench_cpu_training.cpu_name()}; load average {load:.1f}; "
          f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS')}", flush=True)
    out = {"cpu": bench_cpu_training.cpu_name(), "load_average_start": load,
           "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS"), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "results": {}}
    if args.compare_batch_norm:
        for workload in args.workload or DEFAULT_WORKLOADS:
            model, size, batch = workload.split(":")
            print(f"{workload}: Keras BN against the fused kernel", flush=True)
            out["results"][workload] = result = compare_batch_norm(model, int(size), int(batch),
                                                                   args.compare_batch_norm, args.steps)
            print(f"  fused/keras {result['speed_up']:.2f}x images/s, {result['cpu_time_ratio']:.2f}x less CPU time; losses keras {result['losses']['keras']}, "
                  f"fused {result['losses']['fused']} (largest relative difference "
                  f"{result['largest_relative_loss_difference']:.1e}; moving statistics "
                  f"{result['largest_relative_moving_statistic_difference']:.1e}); first gradient against float64: "
                  + ", ".join(f"{k} {v['global']:.1e} global, {v['largest_per_variable']:.1e} largest per variable"
                              for k, v in result["gradient_error_against_float64"].items()), flush=True)
        out["load_average_end"] = os.getloadavg()[0]
        output = args.output.with_name(args.output.stem + "_batch_norm.json")
        output.write_text(json.dumps(out, indent=1) + "\n")
        return print(f"wrote {output}")
    out["batch_norm"] = args.batch_norm
    for workload in args.workload or DEFAULT_WORKLOADS:
        model, size, batch = workload.split(":")
        for feed in args.feed or ("memory", "pipeline"):
            result = profile(model, int(size), int(batch), feed, args.steps, args.warmup, args.batch_norm == "fused")
            out["results"][f"{workload}:{feed}"] = result
            print(f"\n{model} {size}², batch {batch}, feed {feed} "
                  f"({result['images_per_s_untraced']:.1f} images/s untraced):\n{table(result)}", flush=True)
            print("costliest op types (ms/step): " + ", ".join(
                f"{k} {v * 1e3:.1f}" for k, v in list(result["op_types_s"].items())[:10]), flush=True)
            out["load_average_end"] = os.getloadavg()[0]
            args.output.parent.mkdir(parents=True, exist_ok=True)
            args.output.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
