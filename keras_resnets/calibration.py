"""Which Keras backend trains a model fastest on this machine: a short measurement, cached per machine.

Keras fixes its backend at import (``KERAS_BACKEND``), so a running ``train`` cannot switch; instead
``keras-resnets calibrate --model M`` trains the model a few steps on every installed backend
(TensorFlow, JAX, PyTorch), each in its own child process, alternating them in short rounds so the
load of a shared machine hits all alike, and caches the images/s under the user's cache directory
(``$XDG_CACHE_HOME/keras_resnets/calibration.json``, else ``~/.cache/...``), keyed by the CPU, the
installed versions, TensorFlow's oneDNN switch, the model, the input shape and the batch size.
``train`` then prints one line at its start when the cache says another backend trains this model at
this input and batch size at least 10 % faster (:func:`recommendation`; it reads the cache, it never
measures). Export needs the TensorFlow backend whatever backend trained.

Each child trains as ``train`` does: ``compile_model`` with the ``cifar10_study`` recipe (SGD with
momentum, L2 penalty, the task's loss and metric), XLA as ``--xla auto`` (on for JAX), on one random
batch held in memory — the training step, not the input pipeline.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BACKENDS = ("tensorflow", "jax", "torch")
# a backend's import name and the distributions whose versions enter the key
_DISTRIBUTIONS = {"tensorflow": ("tensorflow", "tensorflow-cpu"), "jax": ("jax", "jaxlib"), "torch": ("torch",)}
MARGIN = 1.10  # recommend another backend only when it measured at least this much faster


def cpu_name() -> str:
    """``<model name> (<widest vector ISA>), <n> cores`` from /proc/cpuinfo (the platform's name elsewhere)."""
    import platform

    try:
        text = Path("/proc/cpuinfo").read_text()
        name = next(line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("model name"))
        isa = "AVX-512" if " avx512f" in text else "AVX2" if " avx2" in text else "no AVX2"
        return f"{name} ({isa}), {os.cpu_count()} cores"
    except (OSError, StopIteration):
        return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "keras_resnets" / "calibration.json"


def installed_backends() -> list:
    """The Keras backends whose framework is importable here (found without importing it)."""
    return [b for b in BACKENDS if importlib.util.find_spec(b) is not None]


def _version(distribution: str):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_key(model: str, input_shape, batch_size: int) -> str:
    """The cache key: CPU, versions (Keras and every backend), the oneDNN switch, model, input, batch."""
    versions = {"keras": _version("keras")}
    for distributions in _DISTRIBUTIONS.values():
        versions.update({d: _version(d) for d in distributions if _version(d)})
    return json.dumps({"cpu": cpu_name(), "versions": versions,
                       "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1"),
                       "model": model, "input_shape": [int(s) for s in input_shape], "batch_size": int(batch_size)},
                      sort_keys=True)


def _read_cache() -> dict:
    try:
        return json.loads(cache_path().read_text())
    except (OSError, ValueError):
        return {}


def cached(model: str, input_shape, batch_size: int) -> dict | None:
    """The cached calibration of this model, input and batch on this machine, or None."""
    return _read_cache().get(machine_key(model, input_shape, batch_size))


def recommendation(model: str, input_shape, batch_size: int, backend: str | None = None) -> str | None:
    """One line when the cache says another backend trains this model at this input and batch size at least
    10 % faster than ``backend`` (default: Keras' current one); None otherwise (also with no calibration)."""
    entry = cached(model, input_shape, batch_size)
    if backend is None:
        import keras

        backend = keras.backend.backend()
    if not entry or backend not in entry["images_per_s"]:
        return None
    rates = entry["images_per_s"]
    best = max(rates, key=rates.get)
    if best == backend or rates[best] < MARGIN * rates[backend]:
        return None
    shape = "x".join(str(s) for s in input_shape)
    return (f"train: note: on this machine {model} at {shape}, batch {batch_size} trained {rates[best] / rates[backend]:.1f}x "
            f"faster with KERAS_BACKEND={best} ({rates[best]:.0f} vs {rates[backend]:.0f} images/s, "
            f"keras-resnets calibrate, {entry['date']}); export still needs TensorFlow")


# ----------------------------------------------------------------------------------------------- measuring

def _child(model_name: str, input_shape, batch_size: int, warmup: int) -> None:
    """Child process (``KERAS_BACKEND`` set by the parent): build, warm up, then answer each ``steps``
    line on stdin with the images/s of that many training steps."""
    import keras
    import numpy as np

    import keras_resnets
    from keras_resnets.training.build import compile_model
    from keras_resnets.training.recipes import get_recipe
    from keras_resnets.training.steps import resolve_jit_compile

    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model(model_name, input_shape=tuple(input_shape), classes=10)
    compile_model(model, get_recipe("cifar10_study"), total_steps=10_000, jit_compile=resolve_jit_compile("auto"))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch_size, *input_shape)).astype("float32")
    y = rng.integers(0, 10, size=(batch_size,)).astype("int32")

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            logs = model.train_on_batch(x, y)
        float(np.asarray(logs[0]))  # the last step has finished
        return time.perf_counter() - start

    run(warmup)
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        print(json.dumps({"images_per_s": steps * batch_size / run(steps)}), flush=True)


class _Child:
    def __init__(self, backend: str, model: str, input_shape, batch_size: int, warmup: int):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # PyTorch's spinning OpenMP barriers starve on a busy machine
        self.backend = backend
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keras_resnets.calibration", "--child", model,
             "x".join(str(s) for s in input_shape), str(batch_size), str(warmup)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.stdin.close()
            error = self.proc.stderr.read().strip().splitlines()
            raise RuntimeError(f"the {self.backend} backend failed to train: {error[-1] if error else 'no output'}")
        return json.loads(line)

    def time(self, steps: int) -> float:
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self.read()["images_per_s"]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def calibrate(model: str, input_shape, batch_size: int, *, steps: int = 3, rounds: int = 3, warmup: int = 2,
              backends=None, progress=print) -> dict:
    """Measure training images/s of ``model`` on each backend, alternating them in rounds, and cache it.

    Args:
        model: registry name.
        input_shape: ``(height, width, channels)``.
        batch_size: images per step.
        steps: timed training steps per backend per round.
        rounds: rounds (the figure is the median over them).
        warmup: untimed steps first (tracing, XLA compilation).
        backends: the backends to measure (default: every installed one).
        progress: a ``print``-like callable for progress lines.

    Returns:
        The cache entry: ``images_per_s`` per backend, ``fastest``, ``load_average``, ``date``.
    """
    backends = list(backends or installed_backends())
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise ValueError(f"unknown backend {unknown[0]!r}; allowed: {', '.join(BACKENDS)}")
    missing = [b for b in backends if importlib.util.find_spec(b) is None]
    if missing:
        raise ValueError(f"backend {missing[0]!r} is not installed here; installed: {', '.join(installed_backends())}")
    children, rates = [], {b: [] for b in backends}
    load = os.getloadavg()[0]
    try:
        for backend in backends:  # warm up one at a time: compilation must not share the cores
            progress(f"calibrate: {backend}: building and warming up {model} ...")
            child = _Child(backend, model, input_shape, batch_size, warmup)
            children.append(child)
            child.read()
        for r in range(rounds):
            for child in children if r % 2 == 0 else children[::-1]:
                rates[child.backend].append(child.time(steps))
            progress(f"calibrate: round {r + 1}/{rounds}: "
                     + ", ".join(f"{b} {v[-1]:.1f}" for b, v in rates.items()) + " images/s")
    finally:
        for child in children:
            child.close()
    medians = {b: statistics.median(v) for b, v in rates.items()}
    entry = {"images_per_s": medians, "fastest": max(medians, key=medians.get), "rounds": rates,
             "load_average": [load, os.getloadavg()[0]], "date": time.strftime("%Y-%m-%d", time.gmtime())}
    path = cache_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    everything = _read_cache()
    everything[machine_key(model, input_shape, batch_size)] = entry
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(everything, indent=1) + "\n")
    os.replace(temporary, path)  # atomic: a concurrent reader sees the old cache or the new one
    return entry


# ----------------------------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="cifar_resnet20", help="registry name (default cifar_resnet20)")
    parser.add_argument("--image-size", type=int, default=32, help="height and width (default 32)")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="default 3")
    parser.add_argument("--batch-size", type=int, default=128, help="default 128")
    parser.add_argument("--backends", help=f"comma-separated (default: every installed one of {', '.join(BACKENDS)})")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per backend per round (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")


def run(args) -> int:
    for name in ("image_size", "batch_size", "steps", "rounds"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1; got {getattr(args, name)}")
    shape = (args.image_size, args.image_size, args.channels)
    backends = args.backends.split(",") if args.backends else None
    print(f"calibrate: {args.model} at {'x'.join(map(str, shape))}, batch {args.batch_size} on {cpu_name()} "
          f"(load average {os.getloadavg()[0]:.1f}; a busy machine makes the figures noisy)", flush=True)
    entry = calibrate(args.model, shape, args.batch_size, steps=args.steps, rounds=args.rounds, backends=backends,
                      progress=lambda line: print(line, flush=True))
    rates = entry["images_per_s"]
    for backend in sorted(rates, key=rates.get, reverse=True):
        print(f"  {backend:<12}{rates[backend]:>10.1f} images/s  {rates[backend] / rates[entry['fastest']]:.2f}x")
    print(f"fastest: KERAS_BACKEND={entry['fastest']}; cached in {cache_path()} (train prints it at its start when "
          f"it runs this model, input and batch size on a slower backend; export needs TensorFlow)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        _model, _shape, _batch, _warmup = sys.argv[2:6]
        from keras_resnets.environment import apply_quiet_logging

        apply_quiet_logging()
        _child(_model, [int(s) for s in _shape.split("x")], int(_batch), int(_warmup))
