"""GPU training throughput: keras_resnets on the JAX backend vs the same networks in PyTorch.

In one process on one GPU, after warm-up, with device synchronisation around every timed region and
the two sides alternating round by round, on synthetic data already on the device:

=================  =====  =====  ==========================================================
workload           image  batch  PyTorch side (torch.compile, channels_last, bf16 autocast)
=================  =====  =====  ==========================================================
resnet50           224²   256    torchvision ResNet-50 with v1 strides (= our resnet50)
cifar_resnet56     32²    512    benchmarks/gpu/torch_models.py, layer for layer
preact_resnet164   32²    256    benchmarks/gpu/torch_models.py, layer for layer
densenet121        224²   256    torchvision DenseNet-121
=================  =====  =====  ==========================================================

Both sides: SGD momentum 0.9, lr 0.1, cross-entropy on logits, bf16 mixed precision (ours: the
``mixed_bfloat16`` policy and the XLA-compiled Keras train step ``train_on_batch``; float32 weights
on both sides). Before timing, the trainable parameters (and BN statistics) of the two networks are
counted; if they differ by more than 0.5 % the ratio is refused with one line. Reported per side:
images/s, model TFLOP/s = 3 x forward FLOPs per image (``keras_resnets.models.profile``, the same
count for both sides; PyTorch's own FLOP counter is recorded as a cross-check) x images/s, and MFU
= model TFLOP/s / the GPU's dense bf16 peak (``PEAK_BF16_FLOPS``); and the ratio ours / PyTorch.

``--diagnose`` adds, per selected workload, rows that locate a gap: a hand-written JAX train step on
the same Keras model (``model.stateless_call`` + SGD momentum, ``jax.jit`` with donated buffers,
no per-step host synchronisation) against Keras' ``train_on_batch``, Keras ``fit`` on a
``PyDataset`` of host numpy batches (the real loop without TensorFlow, input copy included), and
the forward pass alone on both sides. ``--trace DIR`` writes a ``jax.profiler`` trace of a few steps
of each; ``--xla-dump DIR`` makes XLA dump its HLO (set before JAX is imported).

Needs JAX, Keras and keras_resnets, plus PyTorch and torchvision for the baseline; no TensorFlow.
Without PyTorch or without a CUDA device the PyTorch side is reported unavailable (with the
reason) and no ratio is given. ``--tiny`` shrinks sizes, batches, depths and steps for a CPU
smoke run. ``--json PATH`` writes everything (the schema of ``benchmarks/results/gpu_*.json``),
rewritten after every workload so that a run cut short keeps what it measured.

    KERAS_BACKEND=jax python benchmarks/bench_gpu_throughput.py --json gpu_throughput.json
    KERAS_BACKEND=jax python benchmarks/bench_gpu_throughput.py --only resnet50 --diagnose
"""
from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import sys
import time

SCHEMA = "keras_resnets.bench_gpu_throughput/1"
# Dense bf16 tensor-core peak per GPU (vendor data sheets), matched in order against the device name:
# the more specific names first.
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H200", 989e12),
    ("GH200", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
)
PARAM_TOLERANCE = 0.005  # relative difference of trainable parameters above which no ratio is given
# name -> image size, batch, classes of the full-size workload.
WORKLOADS = {
    "resnet50": dict(size=224, batch=256, classes=1000),
    "cifar_resnet56": dict(size=32, batch=512, classes=10),
    "preact_resnet164": dict(size=32, batch=256, classes=10),
    "densenet121": dict(size=224, batch=256, classes=1000),
}
# --tiny: a CPU smoke run of the same code (shallower CIFAR nets, small images and batches).
TINY = dict(sizes={"resnet50": 32, "cifar_resnet56": 16, "preact_resnet164": 16, "densenet121": 32},
            depths={"cifar_resnet56": 8, "preact_resnet164": 11}, batch=8, steps=2, warmup=1, rounds=1)


# --- arithmetic (no framework needed) ----------------------------------------------------------------
def peak_flops(device_name: str):
    """Dense bf16 peak FLOP/s of the GPU called ``device_name``, or ``None`` when not in the table."""
    for name, peak in PEAK_BF16_FLOPS:
        if name.lower() in device_name.lower():
            return peak
    return None


def model_flops_per_second(forward_flops_per_image: float, images_per_second: float) -> float:
    """Achieved model FLOP/s of training: forward + backward ~ 3 x forward FLOPs per image."""
    return 3.0 * forward_flops_per_image * images_per_second


def mfu(forward_flops_per_image: float, images_per_second: float, peak):
    """Model-FLOPs utilisation (0..1) against ``peak`` FLOP/s, ``None`` without a known peak."""
    if not peak:
        return None
    return model_flops_per_second(forward_flops_per_image, images_per_second) / peak


def compare_parameters(keras_counts: dict, torch_counts: dict, tolerance: float = PARAM_TOLERANCE):
    """Check that two implementations have the same network size.

    Args:
        keras_counts, torch_counts: ``{"trainable": int, "non_trainable": int}`` of each side.
        tolerance: largest allowed relative difference of the trainable parameters.

    Returns:
        ``(match, relative_difference, message)``: ``message`` is one line saying what differs.
    """
    ours, theirs = keras_counts["trainable"], torch_counts["trainable"]
    relative = abs(ours - theirs) / max(ours, theirs, 1)
    match = relative <= tolerance
    message = (f"parameters keras_resnets {ours:,} vs torch {theirs:,} trainable "
               f"({relative:.2%} apart; BN statistics {keras_counts['non_trainable']:,} vs "
               f"{torch_counts['non_trainable']:,})")
    if not match:
        message += f": more than {tolerance:.1%} apart, not the same network: no ratio"
    return match, relative, message


def side_figures(images_per_second: float, forward_flops: float, peak, batch: int, per_round) -> dict:
    """The figures reported for one side of a workload."""
    share = mfu(forward_flops, images_per_second, peak)
    return {
        "images_per_second": round(images_per_second, 1),
        "ms_per_step": round(1000.0 * batch / images_per_second, 3),
        "model_tflops_per_second": round(model_flops_per_second(forward_flops, images_per_second) / 1e12, 3),
        "mfu": round(share, 4) if share is not None else None,
        "rounds_images_per_second": [round(x, 1) for x in per_round],
    }


def one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


# --- command line and environment --------------------------------------------------------------------
def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(WORKLOADS)} (default: all)")
    parser.add_argument("--batch", type=int, help="one batch size for every workload (default: per workload)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per side per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating timed rounds (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first, compilation included")
    parser.add_argument("--lr", type=float, default=0.1, help="SGD learning rate, both sides (default: %(default)s)")
    parser.add_argument("--torch-resnet50", choices=("v1", "v1.5"), default="v1",
                        help="PyTorch ResNet-50: torchvision's with v1 strides (= ours) or its own v1.5")
    parser.add_argument("--skip-torch", action="store_true", help="time keras_resnets only")
    parser.add_argument("--torch-cpu", action="store_true",
                        help="with --tiny and no CUDA: run the PyTorch side on the CPU, eager (a code check)")
    parser.add_argument("--diagnose", action="store_true",
                        help="add a hand-written JAX train step and forward-only timings per workload")
    parser.add_argument("--trace", metavar="DIR", help="with --diagnose: write a jax.profiler trace to DIR")
    parser.add_argument("--xla-dump", metavar="DIR", help="XLA dumps its HLO to DIR (set before JAX starts)")
    parser.add_argument("--tiny", action="store_true", help="small sizes, depths and batches: a CPU smoke run")
    parser.add_argument("--json", metavar="PATH", help="write the results to PATH (after every workload)")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="measure nothing: merge the workloads of these result files of one device (to --json) "
                             "and print their summary")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(WORKLOADS)
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        bad = unknown[0] if unknown else args.only
        parser.error(f"--only: unknown workload {bad!r}; allowed: {', '.join(WORKLOADS)}")
    args.names = names
    for flag in ("steps", "rounds", "warmup", "batch"):
        value = getattr(args, flag)
        if value is not None and value < (0 if flag == "warmup" else 1):
            parser.error(f"--{flag} must be positive, got {value}")
    if args.trace and not args.diagnose:
        parser.error("--trace needs --diagnose")
    if args.torch_cpu and not args.tiny:
        parser.error("--torch-cpu is a code check: it needs --tiny")
    if args.tiny:
        args.steps, args.warmup, args.rounds = TINY["steps"], TINY["warmup"], TINY["rounds"]
    return args


def configure_environment(args) -> None:
    """Environment JAX reads when it starts: backend, no preallocation (PyTorch shares the GPU), dumps."""
    if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
        raise SystemExit(f"bench_gpu_throughput: error: needs KERAS_BACKEND=jax; got {os.environ['KERAS_BACKEND']!r}")
    # JAX would take 75 % of the GPU at start; PyTorch runs in the same process.
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.xla_dump:
        if "jax" in sys.modules:
            raise SystemExit("bench_gpu_throughput: error: --xla-dump must be set before JAX is imported")
        os.makedirs(args.xla_dump, exist_ok=True)
        # Only the training and forward modules: Keras' (jit_train_step) and the diagnostics' own.
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={args.xla_dump}"
                                   " --xla_dump_hlo_as_text --xla_dump_hlo_module_re=.*(train_step|keras_forward).*"
                                   ).strip()


def workload_settings(name: str, args) -> dict:
    """Image size, batch, classes and model keywords of ``name`` under ``args``."""
    base = dict(WORKLOADS[name])
    kwargs = {}
    if args.tiny:
        base["size"], base["batch"] = TINY["sizes"][name], TINY["batch"]
        if name in TINY["depths"]:
            kwargs["depth"] = TINY["depths"][name]
    if args.batch:
        base["batch"] = args.batch
    return {**base, "model_kwargs": kwargs}


# --- the keras_resnets side ---------------------------------------------------------------------------
class TimedSide:
    """What both sides share: ``timed`` runs ``step`` (one training step) between two ``sync`` calls."""

    label = "keras_resnets"

    def loss_value(self, loss) -> float:
        return float(loss)

    def timed(self, steps: int) -> float:
        """Images/s over ``steps`` training steps, device work included."""
        self.sync()
        started = time.perf_counter()
        for _ in range(steps):
            loss = self.step()
        self.sync()
        seconds = time.perf_counter() - started
        if not math.isfinite(self.loss_value(loss)):
            raise FloatingPointError(f"{self.label} loss is {self.loss_value(loss)}")
        return self.batch * steps / seconds


class KerasSide(TimedSide):
    """A keras_resnets model compiled for bf16 XLA training, and its synthetic batch on the device."""

    def __init__(self, name: str, settings: dict, lr: float):
        import jax
        import keras
        import numpy as np

        import keras_resnets
        from keras_resnets.models.profile import profile_model

        self.batch, self.lr = settings["batch"], lr
        size, classes = settings["size"], settings["classes"]
        keras.utils.set_random_seed(0)
        keras.config.set_dtype_policy("mixed_bfloat16")
        try:
            self.model = keras_resnets.create_model(name, input_shape=(size, size, 3), classes=classes,
                                                    classifier_activation=None, **settings["model_kwargs"])
            self.model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9),
                               loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
        finally:
            keras.config.set_dtype_policy("float32")
        self.forward_flops = profile_model(self.model).flops
        self.counts = {"trainable": int(sum(np.prod(w.shape) for w in self.model.trainable_weights)),
                       "non_trainable": int(sum(np.prod(w.shape) for w in self.model.non_trainable_weights))}
        rng = np.random.default_rng(0)
        self.images = jax.device_put(rng.standard_normal((self.batch, size, size, 3), dtype=np.float32))
        self.labels = jax.device_put(rng.integers(0, classes, self.batch).astype(np.int32))

    def step(self):
        return self.model.train_on_batch(self.images, self.labels)  # a host float: the step is complete

    def sync(self):
        import jax

        jax.block_until_ready(self.model.trainable_variables[0].value)

    def release(self):
        import keras

        del self.model, self.images, self.labels
        keras.backend.clear_session()
        gc.collect()


# --- the PyTorch side ---------------------------------------------------------------------------------
def torch_device(allow_cpu: bool):
    """``(device, None)`` where the PyTorch side can run, or ``(None, reason)``."""
    try:
        import torch
        import torchvision  # noqa: F401
    except ImportError as err:
        return None, f"PyTorch/torchvision not installed (no module {err.name!r})"
    if torch.cuda.is_available():
        return "cuda", None
    if allow_cpu:
        return "cpu", None
    return None, "no CUDA device for PyTorch"


def torch_builder(name: str, args):
    """``(builder(classes, **model_kwargs), description)`` of the PyTorch counterpart of ``name``."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu"))
    import torch_models

    if name == "resnet50" and args.torch_resnet50 == "v1.5":
        return torch_models.torchvision_resnet50, "torchvision resnet50 (its own v1.5 strides)"
    description = torch_models.TORCH_MODELS[name][1]
    if name == "cifar_resnet56":  # --tiny builds shallower nets: the depth is a keyword
        return (lambda classes, depth=56: torch_models.cifar_resnet(depth, classes)), description
    if name == "preact_resnet164":
        return (lambda classes, depth=164: torch_models.preact_resnet(depth, classes)), description
    return torch_models.TORCH_MODELS[name][0], description


class TorchSide(TimedSide):
    """The PyTorch network (torch.compile on CUDA, channels_last, bf16 autocast) and its batch."""

    label = "torch"

    def __init__(self, name: str, settings: dict, lr: float, device: str, args):
        import torch

        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gpu"))
        from torch_models import parameter_counts

        self.torch, self.device, self.batch = torch, device, settings["batch"]
        size, classes = settings["size"], settings["classes"]
        builder, self.description = torch_builder(name, args)
        torch.manual_seed(0)
        torch.backends.cudnn.benchmark = True
        model = builder(classes, **settings["model_kwargs"])
        self.counts = parameter_counts(model)
        self.counted_forward_flops = self._count_flops(model, size)
        self.model = model.to(device, memory_format=torch.channels_last)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=0.9)
        self.compiled = device == "cuda"  # inductor on a CPU needs a C++ toolchain and minutes: eager there
        self.compile_error = None
        self.net = torch.compile(self.model) if self.compiled else self.model
        self.images = torch.randn(self.batch, 3, size, size, device=device)
        self.images = self.images.contiguous(memory_format=torch.channels_last)
        self.labels = torch.randint(0, classes, (self.batch,), device=device)

    def use_eager(self, error: str) -> None:
        """After torch.compile failed: time eager PyTorch instead, recorded as such (``compiled: false``)."""
        self.compile_error = error
        self.compiled = False
        self.net = self.model
        self.optimizer.zero_grad(set_to_none=True)
        try:
            import torch._dynamo

            torch._dynamo.reset()
        except Exception:  # only frees compiled code
            pass

    def _count_flops(self, model, size: int):
        """Forward FLOPs per image by PyTorch's own counter (a cross-check of ours), or None."""
        try:
            from torch.utils.flop_counter import FlopCounterMode

            with FlopCounterMode(display=False) as counter, self.torch.no_grad():
                model.eval()(self.torch.zeros(1, 3, size, size))
            model.train()
            return int(counter.get_total_flops())
        except Exception as err:  # a cross-check only: say so and go on
            print(f"  (torch FLOP counter failed: {one_line(err)})")
            return None

    def step(self):
        torch = self.torch
        with torch.autocast(self.device, dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(self.net(self.images), self.labels)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss

    def sync(self):
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def loss_value(self, loss) -> float:
        return loss.item()

    def forward_ms(self, steps: int, warmup: int) -> float:
        """Milliseconds per forward pass alone (no gradients), compiled like the training step."""
        torch = self.torch
        net = torch.compile(self.model) if self.compiled else self.model

        def forward():
            with torch.no_grad(), torch.autocast(self.device, dtype=torch.bfloat16):
                return net(self.images)

        for _ in range(warmup):
            forward()
        self.sync()
        started = time.perf_counter()
        for _ in range(steps):
            forward()
        self.sync()
        return 1000.0 * (time.perf_counter() - started) / steps

    def release(self):
        del self.model, self.net, self.optimizer, self.images, self.labels
        gc.collect()
        if self.device == "cuda":
            self.torch.cuda.empty_cache()


# --- diagnostics --------------------------------------------------------------------------------------
def jax_train_step(model, lr: float, momentum: float = 0.9):
    """A hand-written JAX train step on ``model``: stateless_call, cross-entropy, SGD momentum.

    Returns ``(step, state)``; ``step(*state, images, labels)`` returns the new state and the loss.
    The state (copies of the weights, BN statistics and velocities) is donated to each call.
    """
    import jax
    import jax.numpy as jnp

    trainable = [jnp.array(v.value) for v in model.trainable_variables]
    non_trainable = [jnp.array(v.value) for v in model.non_trainable_variables]
    velocity = [jnp.zeros_like(w) for w in trainable]

    def loss_fn(trainable, non_trainable, images, labels):
        logits, non_trainable = model.stateless_call(trainable, non_trainable, images, training=True)
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
        loss = -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))
        return loss, non_trainable

    def hand_train_step(trainable, non_trainable, velocity, images, labels):
        (loss, non_trainable), grads = jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable,
                                                                                 images, labels)
        # Keras' SGD: v = m v - lr g; w = w + v
        velocity = [momentum * v - lr * g.astype(v.dtype) for v, g in zip(velocity, grads)]
        trainable = [w + v for w, v in zip(trainable, velocity)]
        return trainable, non_trainable, velocity, loss

    return jax.jit(hand_train_step, donate_argnums=(0, 1, 2)), (trainable, non_trainable, velocity)


def time_jax_step(step, state, images, labels, steps: int, warmup: int):
    """ms per step of the hand-written step, dispatched without host synchronisation between steps."""
    import jax

    for _ in range(warmup):
        *state, loss = step(*state, images, labels)
    jax.block_until_ready(loss)
    started = time.perf_counter()
    for _ in range(steps):
        *state, loss = step(*state, images, labels)
    jax.block_until_ready(loss)
    seconds = time.perf_counter() - started
    if not math.isfinite(float(loss)):
        raise FloatingPointError(f"hand-written JAX step: loss is {float(loss)}")
    return 1000.0 * seconds / steps, state


def jax_forward_ms(model, images, steps: int, warmup: int) -> float:
    """ms per inference forward pass of the Keras model, jitted through ``stateless_call``."""
    import jax

    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    def keras_forward(trainable, non_trainable, images):
        return model.stateless_call(trainable, non_trainable, images, training=False)[0]

    forward = jax.jit(keras_forward)
    for _ in range(warmup):
        out = forward(trainable, non_trainable, images)
    jax.block_until_ready(out)
    started = time.perf_counter()
    for _ in range(steps):
        out = forward(trainable, non_trainable, images)
    jax.block_until_ready(out)
    return 1000.0 * (time.perf_counter() - started) / steps


def keras_fit_ms(keras_side: KerasSide, steps: int) -> float:
    """ms per step of ``model.fit`` on a ``keras.utils.PyDataset`` of host numpy batches (the loop
    ``keras_resnets.train`` runs without TensorFlow: a host-to-device copy per step, no per-step sync).

    Two epochs of ``steps`` steps; the second is timed (the train function is already compiled).
    """
    import keras
    import numpy as np

    images, labels = np.asarray(keras_side.images), np.asarray(keras_side.labels)

    class SameBatch(keras.utils.PyDataset):
        def __len__(self):
            return steps

        def __getitem__(self, index):
            return images, labels

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # Keras has synchronised the logs by now
            self.seconds = time.perf_counter() - self.started

    timer = EpochTimer()
    keras_side.model.fit(SameBatch(), epochs=2, verbose=0, callbacks=[timer])
    return 1000.0 * timer.seconds / steps


def diagnose(keras_side: KerasSide, torch_side, result: dict, args) -> dict:
    """Rows that separate Keras' loop from the compiled graph, and forward from backward."""
    rows = {"keras train_on_batch (per-step host sync)": result["keras_resnets"].get("ms_per_step")}
    if torch_side is not None and "ms_per_step" in result.get("torch", {}):
        rows[f"torch train step ({'compiled' if torch_side.compiled else 'eager'})"] = result["torch"]["ms_per_step"]
    steps, warmup = args.steps, max(args.warmup, 1)
    attempts = [
        ("jax hand-written step (jit, donated, async)",
         lambda: _hand_step_ms(keras_side, steps, warmup)),
        ("keras_resnets forward only (jit, inference)",
         lambda: jax_forward_ms(keras_side.model, keras_side.images, steps, warmup)),
        ("keras fit, PyDataset of host numpy batches", lambda: keras_fit_ms(keras_side, steps)),
    ]
    if torch_side is not None:
        attempts.append((f"torch forward only ({'compiled' if torch_side.compiled else 'eager'}, no_grad)",
                         lambda: torch_side.forward_ms(steps, warmup)))
    batch = keras_side.batch
    print(f"  diagnose {result['name']} (batch {batch}):")
    print(f"    {'what':<48}{'ms/step':>10}{'images/s':>12}")
    for label, value in rows.items():
        print_diagnostic(label, value, batch)
    for label, run in attempts:
        try:
            rows[label] = round(run(), 3)
        except Exception as err:  # one failed diagnostic must not hide the others
            rows[label] = f"failed: {one_line(err)}"
        print_diagnostic(label, rows[label], batch)
    if args.trace:
        rows["trace"] = _trace(keras_side, args.trace)
        print_diagnostic("jax.profiler trace", rows["trace"], batch)
    return rows


def print_diagnostic(label: str, value, batch: int) -> None:
    if isinstance(value, (int, float)):
        print(f"    {label:<48}{value:>10.2f}{1000.0 * batch / value:>12.1f}", flush=True)
    else:
        print(f"    {label:<48}  {value}", flush=True)


def _hand_step_ms(keras_side: KerasSide, steps: int, warmup: int) -> float:
    step, state = jax_train_step(keras_side.model, keras_side.lr)
    ms, _ = time_jax_step(step, state, keras_side.images, keras_side.labels, steps, warmup)
    return ms


def _trace(keras_side: KerasSide, directory: str) -> str:
    """A jax.profiler trace of 2 train_on_batch steps and 2 hand-written steps (kept short: traces are large)."""
    import jax

    try:
        step, state = jax_train_step(keras_side.model, keras_side.lr)
        _, state = time_jax_step(step, state, keras_side.images, keras_side.labels, 1, 1)  # compiled before tracing
        with jax.profiler.trace(directory):
            keras_side.timed(2)
            time_jax_step(step, state, keras_side.images, keras_side.labels, 1, 1)
        return f"written to {directory}"
    except Exception as err:
        return f"failed: {one_line(err)}"


# --- one workload -------------------------------------------------------------------------------------
def run_workload(name: str, args, device_info: dict, torch_dev, torch_reason, partial: dict) -> dict:
    """Build, check, warm up and time both sides of workload ``name``; errors are recorded, not raised.

    ``partial`` is the results so far (written with this workload's timings before diagnostics).
    """
    settings = workload_settings(name, args)
    peak = device_info["peak_bf16_flops"]
    result = {"name": name, "image_size": settings["size"], "batch": settings["batch"],
              "classes": settings["classes"], "model_kwargs": settings["model_kwargs"],
              "ratio_keras_resnets_over_torch": None, "ratio_refused": None}
    print(f"{name}: {settings['size']}px, batch {settings['batch']}"
          + (f", {settings['model_kwargs']}" if settings["model_kwargs"] else ""), flush=True)
    sides = []
    try:
        keras_side = KerasSide(name, settings, args.lr)
    except Exception as err:
        result["keras_resnets"] = {"error": one_line(err)}
        result["ratio_refused"] = "keras_resnets side failed"
        print(f"  keras_resnets: failed: {one_line(err)}")
        return result
    flops = keras_side.forward_flops
    result["forward_flops_per_image"] = int(flops)
    result["params"] = {"keras_resnets": keras_side.counts, "torch": None, "relative_difference": None, "match": None}
    sides.append(keras_side)

    torch_side = None
    if args.skip_torch:
        result["torch"] = {"unavailable": "skipped (--skip-torch)"}
    elif torch_dev is None:
        result["torch"] = {"unavailable": torch_reason}
    else:
        try:
            torch_side = TorchSide(name, settings, args.lr, torch_dev, args)
        except Exception as err:
            result["torch"] = {"error": one_line(err)}
            print(f"  torch: failed to build: {one_line(err)}")
    if torch_side is not None:
        match, relative, message = compare_parameters(keras_side.counts, torch_side.counts)
        result["params"].update(torch=torch_side.counts, relative_difference=round(relative, 6), match=match)
        print(f"  {message}")
        result["torch"] = {"model": torch_side.description, "device": torch_dev, "compiled": torch_side.compiled,
                           "channels_last": True, "autocast": "bfloat16",
                           "forward_flops_per_image_torch_counter": torch_side.counted_forward_flops}
        counted = torch_side.counted_forward_flops
        if counted and abs(counted - flops) / flops > 0.01:
            print(f"  note: forward FLOPs per image, ours {flops / 1e9:.3f} G vs torch's counter {counted / 1e9:.3f} G")
        if match:
            sides.append(torch_side)
        else:
            result["ratio_refused"] = message
            torch_side.release()
            torch_side = None
    elif result["ratio_refused"] is None:
        result["ratio_refused"] = f"torch side: {result['torch'].get('unavailable') or result['torch'].get('error')}"

    timings = {side.label: [] for side in sides}
    failed = {}
    for side in sides:  # warm-up: compilation, autotuning, allocation
        try:
            warm_up(side, args.warmup)
        except Exception as err:
            if side is torch_side and side.compiled:
                print(f"  torch.compile failed ({one_line(err)}): timing eager PyTorch instead, recorded as such")
                side.use_eager(one_line(err))
                try:
                    warm_up(side, args.warmup)
                    continue
                except Exception as eager_err:
                    err = eager_err
            failed[side.label] = one_line(err)
    if torch_side is not None:
        result["torch"].update(compiled=torch_side.compiled, compile_error=torch_side.compile_error)
    for _ in range(args.rounds):  # alternate the sides, round by round
        for side in sides:
            if side.label in failed:
                continue
            try:
                timings[side.label].append(side.timed(args.steps))
            except Exception as err:
                failed[side.label] = one_line(err)
    for side in sides:
        key = "keras_resnets" if side is keras_side else "torch"
        if side.label in failed:
            result[key] = {**result.get(key, {}), "error": failed[side.label]}
            print(f"  {side.label}: failed: {failed[side.label]}")
            continue
        per_round = timings[side.label]
        # Images/s over all timed steps (equal steps per round: the harmonic mean of the rounds).
        images_per_second = len(per_round) / sum(1.0 / r for r in per_round)
        result[key] = {**result.get(key, {}), **side_figures(images_per_second, flops, peak, side.batch, per_round)}
    ours, theirs = result.get("keras_resnets", {}), result.get("torch", {})
    if "images_per_second" in ours and "images_per_second" in theirs:
        result["ratio_keras_resnets_over_torch"] = round(ours["images_per_second"] / theirs["images_per_second"], 3)
    elif result["ratio_refused"] is None:
        result["ratio_refused"] = "a side failed: " + "; ".join(f"{k}: {v}" for k, v in failed.items())
    print_workload(result)

    if args.diagnose and "images_per_second" in ours:
        if args.json:  # keep the timings if a diagnostic runs past the time limit
            write_json(args.json, {**partial, "workloads": {**partial["workloads"], name: result}})
        result["diagnose"] = diagnose(keras_side, torch_side, result, args)
    for side in sides:
        side.release()
    return result


def warm_up(side, steps: int) -> None:
    for _ in range(steps):
        side.step()
    side.sync()


def print_workload(result: dict) -> None:
    for key, label in (("keras_resnets", "keras_resnets"), ("torch", "torch")):
        side = result.get(key, {})
        if "images_per_second" in side:
            share = f"MFU {side['mfu']:.1%}" if side["mfu"] is not None else "MFU n/a (no bf16 peak known)"
            print(f"  {label:<14}{side['images_per_second']:>10.1f} images/s {side['ms_per_step']:>9.2f} ms/step "
                  f"{side['model_tflops_per_second']:>8.2f} model TFLOP/s  {share}")
    if result.get("torch", {}).get("compile_error"):
        print(f"  note: the torch side ran eager: torch.compile failed: {result['torch']['compile_error']}")
    if result["ratio_keras_resnets_over_torch"] is not None:
        print(f"  ratio keras_resnets / torch: {result['ratio_keras_resnets_over_torch']:.2f}x (goal >= 1.0)")
    else:
        print(f"  no ratio: {result['ratio_refused']}")


def print_summary(results: dict) -> None:
    peak = results["peak_bf16_flops"]
    print(f"\nsummary  {results['device']['platform']}: {results['device']['name']}  bf16  SGD momentum 0.9  "
          f"(images/s; MFU vs {f'{peak / 1e12:.0f} TFLOP/s' if peak else 'n/a: no bf16 peak known'})")
    print(f"{'workload':<18}{'px':>4}{'batch':>6}{'ours':>10}{'MFU':>7}{'torch':>10}{'MFU':>7}{'ratio':>8}")
    for name, r in results["workloads"].items():
        ours, theirs = r.get("keras_resnets", {}), r.get("torch", {})

        def cell(side, key, fmt):
            value = side.get(key)
            return format(value, fmt) if isinstance(value, (int, float)) else "-"

        ratio = r.get("ratio_keras_resnets_over_torch")
        print(f"{name:<18}{r['image_size']:>4}{r['batch']:>6}{cell(ours, 'images_per_second', '10.1f'):>10}"
              f"{cell(ours, 'mfu', '7.1%'):>7}{cell(theirs, 'images_per_second', '10.1f'):>10}"
              f"{cell(theirs, 'mfu', '7.1%'):>7}{(f'{ratio:.2f}x' if ratio else '-'):>8}")
    for name, r in results["workloads"].items():
        if r.get("diagnose"):
            print(f"diagnose {name} (batch {r['batch']}): {'ms/step':>10}{'images/s':>12}")
            for label, value in r["diagnose"].items():
                print_diagnostic(label, value, r["batch"])


# --- the run ------------------------------------------------------------------------------------------
def matmul_tflops(jax) -> float:
    """Measured bf16 matrix-product rate (8192³, mean of 10 after warm-up): the practical ceiling."""
    import jax.numpy as jnp

    n = 8192
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype=jnp.bfloat16)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype=jnp.bfloat16)
    product = jax.jit(jnp.matmul)
    product(a, b).block_until_ready()
    started = time.perf_counter()
    for _ in range(10):
        out = product(a, b)
    out.block_until_ready()
    return 2 * n ** 3 * 10 / (time.perf_counter() - started) / 1e12


def environment(args) -> dict:
    """Device, peak and versions, as recorded in the JSON."""
    import jax
    import jaxlib
    import keras

    device = jax.devices()[0]
    on_gpu = device.platform == "gpu"
    versions = {"python": platform.python_version(), "jax": jax.__version__, "jaxlib": jaxlib.__version__,
                "keras": keras.__version__, "cuda_jax": None, "torch": None, "torchvision": None,
                "cuda_torch": None, "cudnn_torch": None}
    if on_gpu:
        versions["cuda_jax"] = getattr(device.client, "platform_version", None)
    try:
        import torch
        import torchvision

        versions.update(torch=torch.__version__, torchvision=torchvision.__version__, cuda_torch=torch.version.cuda,
                        cudnn_torch=torch.backends.cudnn.version() if torch.cuda.is_available() else None)
    except ImportError:
        pass
    name = device.device_kind
    info = {"device": {"platform": device.platform, "name": name, "count": len(jax.devices())},
            "peak_bf16_flops": peak_flops(name) if on_gpu else None,
            "peak_source": "vendor data sheet, dense bf16" if on_gpu and peak_flops(name) else None,
            "measured_matmul_bf16_tflops": None, "versions": versions}
    if on_gpu:
        try:
            info["measured_matmul_bf16_tflops"] = round(matmul_tflops(jax), 1)
        except Exception as err:
            print(f"matmul ceiling not measured: {one_line(err)}")
    return info


def write_json(path: str, results: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=2)
    os.replace(tmp, path)


def merge_results(paths) -> dict:
    """One result of several runs on the same device (later files win for a workload measured twice)."""
    merged = None
    for path in paths:
        try:
            with open(path) as f:
                part = json.load(f)
        except (OSError, json.JSONDecodeError) as err:
            raise SystemExit(f"bench_gpu_throughput: error: cannot read {path!r}: {one_line(err)}")
        if part.get("schema") != SCHEMA:
            raise SystemExit(f"bench_gpu_throughput: error: {path!r} has schema {part.get('schema')!r}, not {SCHEMA!r}")
        if merged is None:
            merged = {**part, "workloads": dict(part["workloads"]), "merged_from": []}
        elif part["device"]["name"] != merged["device"]["name"]:
            raise SystemExit(f"bench_gpu_throughput: error: {path!r} was measured on {part['device']['name']!r}, "
                             f"the others on {merged['device']['name']!r}: not merged")
        for name, work in part["workloads"].items():
            merged["workloads"][name] = merge_workload(merged["workloads"].get(name), work)
        merged["merged_from"].append({"file": os.path.basename(path), "date": part["date"],
                                      "workloads": list(part["workloads"])})
    return merged


def merge_workload(earlier, later) -> dict:
    """``later`` replaces ``earlier`` unless only ``earlier`` has a ratio (a keras-only diagnostic run);
    diagnostics are kept from either."""
    if earlier is None:
        return later
    keep_earlier = earlier.get("ratio_keras_resnets_over_torch") and not later.get("ratio_keras_resnets_over_torch")
    merged = dict(earlier if keep_earlier else later)
    diagnose = later.get("diagnose") or earlier.get("diagnose")
    if diagnose:
        merged["diagnose"] = diagnose
    return merged


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.merge:
        results = merge_results(args.merge)
        if args.json:
            write_json(args.json, results)
        print_summary(results)
        return results
    configure_environment(args)
    import jax

    if jax.devices()[0].platform != "gpu" and not args.tiny:
        print(f"bench_gpu_throughput: skipped: no GPU (JAX sees {jax.devices()[0].platform}); "
              "--tiny runs a CPU smoke test")
        return {}
    info = environment(args)
    torch_dev, torch_reason = torch_device(allow_cpu=args.torch_cpu)
    results = {"schema": SCHEMA, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               **info, "precision": "bf16 mixed (float32 weights)",
               "optimizer": {"name": "sgd", "lr": args.lr, "momentum": 0.9},
               "steps": args.steps, "rounds": args.rounds, "warmup": args.warmup, "tiny": args.tiny,
               "torch_available": torch_dev is not None, "torch_unavailable_reason": torch_reason,
               "workloads": {}}
    v = info["versions"]
    print(f"{results['date']}  {info['device']['platform']}: {info['device']['name']}  "
          f"jax {v['jax']} keras {v['keras']} torch {v['torch']} (CUDA jax {v['cuda_jax']}, torch {v['cuda_torch']})")
    if info["measured_matmul_bf16_tflops"]:
        print(f"bf16 matmul 8192³: {info['measured_matmul_bf16_tflops']} TFLOP/s measured; "
              f"data-sheet peak {(info['peak_bf16_flops'] or 0) / 1e12:.0f}")
    print(f"{args.steps} timed steps x {args.rounds} rounds per side after {args.warmup} warm-up steps"
          + ("" if torch_dev else f"; torch side unavailable: {torch_reason}"))
    for name in args.names:
        results["workloads"][name] = run_workload(name, args, info, torch_dev, torch_reason, results)
        if args.json:
            write_json(args.json, results)
    print_summary(results)
    return results


if __name__ == "__main__":
    main()
