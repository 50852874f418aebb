"""Environment defaults the package applies before TensorFlow is imported.

TensorFlow reads these variables once, at import; so they are set here, from the package's entry
points (``import keras_resnets``, the ``keras-resnets`` command), with ``os.environ.setdefault``: a
value the user has set is never changed, and a process that imported TensorFlow before the package
keeps TensorFlow's own defaults.
"""
from __future__ import annotations

import os

# oneDNN kernels for TensorFlow's convolutions, batch norm and matmuls. TensorFlow turns them on by
# default only on CPUs it recognises as Intel; on the AMD EPYC machines this project measures they were
# off, and turning them on made Keras training of CIFAR ResNets 1.3x-2.8x faster in one alternating run
# (benchmarks/bench_cpu_training.py; docs/training.md, "Which backend trains fastest on a CPU").
# Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's own choice.
TENSORFLOW_DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1"}


def apply_tensorflow_defaults() -> None:
    """Set each of :data:`TENSORFLOW_DEFAULTS` the environment does not already name."""
    for name, value in TENSORFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)
