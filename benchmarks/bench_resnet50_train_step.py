"""Training-step throughput: keras_resnets `resnet50` vs keras.applications `ResNet50`.

Same input size, batch, optimizer (SGD, momentum 0.9), loss and backend; the two models are timed in
alternating rounds so machine noise hits both alike. Prints images/s of each and the ratio
(ours / baseline; the goal is >= 1.0).

    .venv/bin/python benchmarks/bench_resnet50_train_step.py [--size 64] [--batch 32] [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_resnets  # noqa: E402


def compiled(model):
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    return model


def time_steps(model, x, y, steps: int) -> float:
    """Images per second over ``steps`` training steps (after the step function is traced)."""
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(x, y)
    return steps * len(x) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="input height/width (default 64)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="training steps per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    shape = (args.size, args.size, 3)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.batch, *shape)).astype("float32")
    y = rng.integers(0, 1000, size=(args.batch,))
    models = {
        "keras_resnets resnet50": compiled(keras_resnets.create_model("resnet50", input_shape=shape, classifier_activation=None)),
        "keras.applications ResNet50": compiled(keras.applications.ResNet50(weights=None, input_shape=shape, classifier_activation=None)),
    }
    for model in models.values():  # trace and warm up
        time_steps(model, x, y, 2)
    rates = {name: [] for name in models}
    for _ in range(args.rounds):
        for name, model in models.items():
            rates[name].append(time_steps(model, x, y, args.steps))

    medians = {name: statistics.median(r) for name, r in rates.items()}
    print(f"backend {keras.backend.backend()}, input {args.size}x{args.size}, batch {args.batch}, "
          f"{os.cpu_count()} CPU cores, median of {args.rounds} rounds x {args.steps} steps")
    for name, rate in medians.items():
        print(f"  {name:<30} {rate:8.1f} images/s")
    ours, baseline = medians["keras_resnets resnet50"], medians["keras.applications ResNet50"]
    print(f"ratio ours/keras.applications: {ours / baseline:.2f}x (goal >= 1.0)")


if __name__ == "__main__":
    main()
