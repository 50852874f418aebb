"""Environment defaults for TensorFlow, applied before it is imported (by the CLI and the library's entry points):
its oneDNN kernels on (:func:`apply_tensorflow_defaults`) and its start-up logging quiet.

TensorFlow prints its start-up chatter from C++ when its libraries load, so log levels must be in the
environment *before* ``import tensorflow``; setting them later silences nothing. Every default here is
``os.environ.setdefault``: a variable the user set wins. ``KERAS_RESNETS_VERBOSE_TF=1`` turns all of this off.

A few lines are printed by the loader before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL`` (absl's
"All log messages before absl::InitializeLog()" banner, "Could not find cuda drivers", and, where the CUDA
build of ``tensorflow`` is installed beside ``tensorflow-cpu`` as ``tf_keras`` requires, "failed call to
cuInit" on a machine without a GPU), and the TFLite converter and interpreter print a line per call.
:func:`native_noise_filtered` captures the process's stderr, drops exactly those known lines and writes
everything else back; :func:`import_tensorflow_quietly` imports TensorFlow and lists its devices inside it.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings

QUIET_ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # C++ INFO and WARNING (converter, grappler, XLA) off; errors still shown
    "GRPC_VERBOSITY": "ERROR",
    "GLOG_minloglevel": "2",
}

# oneDNN kernels for TensorFlow's convolutions, batch norm and matmuls. TensorFlow turns them on by
# default only on CPUs it recognises as Intel; on the AMD EPYC machines this project measures they were
# off, and turning them on made Keras training of CIFAR ResNets 1.3x-2.8x faster in one alternating run
# (benchmarks/bench_cpu_training.py; docs/training.md, "Which backend trains fastest on a CPU").
# Set TF_ENABLE_ONEDNN_OPTS=0 to keep TensorFlow's own choice.
TENSORFLOW_DEFAULTS = {"TF_ENABLE_ONEDNN_OPTS": "1"}


def apply_tensorflow_defaults() -> None:
    """Set each of :data:`TENSORFLOW_DEFAULTS` the environment does not already name (TensorFlow reads
    them once, at import, so a process that imported TensorFlow before the package keeps its own)."""
    for name, value in TENSORFLOW_DEFAULTS.items():
        os.environ.setdefault(name, value)


# Start-up lines that say nothing about the user's work (matched against each captured stderr line).
_LOADER_NOISE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|^[IW]\d{4} [\d:. ]+\d+ (port|cpu_feature_guard|cudart_stub|cuda_executor|cuda_dnn|cuda_fft|cuda_blas)\.cc:\d+\]"
    r"|^To enable the following instructions: .*rebuild TensorFlow with the appropriate compiler flags\.$"
    # the TFLite converter's and interpreter's own prints (not TensorFlow's logging: its levels miss them)
    r"|^fully_quantize: \d+, inference_type: \d+, input_inference_type: \w+, output_inference_type: \w+$"
    r"|^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"
)


# The CUDA build's failed driver probe: noise on a machine without an NVIDIA device, news on one with.
_NO_GPU_NOISE = re.compile(r"^E\d{4} [\d:. ]+\d+ cuda_(platform|executor)\.cc:\d+\] failed call to cuInit")


def _is_noise(line: str) -> bool:
    return bool(_LOADER_NOISE.search(line)) or (
        not os.path.exists("/dev/nvidiactl") and bool(_NO_GPU_NOISE.search(line)))


def _verbose() -> bool:
    return os.environ.get("KERAS_RESNETS_VERBOSE_TF", "") not in ("", "0")


def apply_quiet_logging() -> None:
    """Set the quiet log levels (unless the user chose their own); cheap, imports nothing heavy."""
    if _verbose():
        return
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    # TensorFlow's quantization debugger (the int8 sensitivity report) still builds tf.lite.Interpreter, whose
    # deprecation warning names a file of the installation and asks nothing of the user.
    warnings.filterwarnings("ignore", message=r"\s*Warning: tf.lite.Interpreter is deprecated", category=UserWarning)
    # Python-side loggers: "INFO:tensorflow:Assets written to ..." and absl's chatter during export.
    for name in ("tensorflow", "absl"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.ERROR)


@contextlib.contextmanager
def native_noise_filtered():
    """Capture the process's stderr (file descriptor 2, so C++ prints too) and write it back without the
    known noise lines when the block ends (also when it raises). Does nothing with ``KERAS_RESNETS_VERBOSE_TF=1``."""
    if _verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not _is_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def import_tensorflow_quietly():
    """``import tensorflow`` (and enumerate its devices) without its loader noise; returns the module.

    Free once TensorFlow is imported. Anything TensorFlow prints that is not a known start-up line is
    written back to stderr unchanged.
    """
    apply_quiet_logging()
    if "tensorflow" not in sys.modules:
        with native_noise_filtered():
            import tensorflow as tf

            tf.config.list_physical_devices()  # the cuInit attempt happens here, inside the capture
    import tensorflow as tf

    return tf


def _keras_backend() -> str:
    """The backend Keras will pick (``KERAS_BACKEND``, else ~/.keras/keras.json), without importing Keras."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    import json

    config = os.path.join(os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras")), "keras.json")
    try:
        with open(config) as f:
            return json.load(f).get("backend", "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def start_quietly(uses_tensorflow: bool = True) -> None:
    """Quiet defaults, then TensorFlow imported quietly if it is installed and about to be used.

    ``uses_tensorflow=False``: only Keras will be imported, which loads TensorFlow on its TensorFlow backend.
    """
    apply_quiet_logging()
    if "tensorflow" in sys.modules or not (uses_tensorflow or _keras_backend() == "tensorflow"):
        return
    import importlib.util

    try:
        installed = importlib.util.find_spec("tensorflow") is not None
    except ImportError:
        installed = False
    if installed:
        import_tensorflow_quietly()


def package_version() -> str:
    """The installed keras_resnets version (``unknown`` in a source tree that is not installed)."""
    try:
        from importlib.metadata import version

        return version("keras_resnets")
    except Exception:  # not installed (running from a source tree)
        return "unknown"
