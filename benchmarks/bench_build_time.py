"""Time to build the deepest registered networks (goal: preact_resnet1001 under 30 s).

    .venv/bin/python benchmarks/bench_build_time.py
"""
from __future__ import annotations

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_resnets  # noqa: E402

GOAL_SECONDS = 30.0


def main() -> None:
    print(f"backend {keras.backend.backend()}, {os.cpu_count()} CPU cores")
    for name in ("preact_resnet1001", "cifar_resnet1202"):
        keras.backend.clear_session()
        start = time.perf_counter()
        model = keras_resnets.create_model(name)
        seconds = time.perf_counter() - start
        print(f"  {name:<20} {len(model.layers):5d} layers  built in {seconds:5.1f} s  "
              f"(goal {GOAL_SECONDS:.0f} s: {GOAL_SECONDS / seconds:.1f}x under)")


if __name__ == "__main__":
    main()
