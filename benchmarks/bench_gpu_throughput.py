"""GPU training throughput: keras_resnets on the JAX backend vs torchvision ResNet-50 (torch.compile).

Both sides train on synthetic data already on the device, batch 256, bf16: keras_resnets with the
``mixed_bfloat16`` policy and its XLA-compiled Keras train step (``train_on_batch``), torchvision
with ``torch.compile``, channels_last and bf16 autocast, in the same process on the same GPU.
Prints images/s, the ratio keras_resnets / torchvision for ResNet-50 (goal >= 1.0) and the
model-FLOPs utilisation: achieved model FLOP/s (3 x forward FLOPs per image x images/s) divided by
the GPU's dense bf16 peak (``PEAK_BF16_FLOPS``).

Needs only JAX, Keras and keras_resnets (plus PyTorch and torchvision for the baseline); no
TensorFlow. ``--tiny`` shrinks sizes, batch and steps to check the script on a CPU.

    KERAS_BACKEND=jax python benchmarks/bench_gpu_throughput.py [--batch 256] [--steps 50] [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import time

if os.environ.setdefault("KERAS_BACKEND", "jax") != "jax":
    raise SystemExit(f"bench_gpu_throughput: error: needs KERAS_BACKEND=jax; got {os.environ['KERAS_BACKEND']!r}")

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_resnets  # noqa: E402
from keras_resnets.models.profile import profile_model  # noqa: E402

# Dense bf16 tensor-core peak per GPU (vendor data sheets), matched in order against the device name.
PEAK_BF16_FLOPS = (
    ("H100 PCIe", 756e12),
    ("H100", 989e12),  # SXM
    ("H200", 989e12),
    ("A100", 312e12),
)
# (registry name, image size, classes) of the keras_resnets side; the first is compared with torchvision.
WORKLOADS = (("resnet50", 224, 1000), ("cifar_resnet56", 32, 10))
TINY = dict(sizes={"resnet50": 64, "cifar_resnet56": 32}, batch=8, steps=3, warmup=1)


def peak_flops(device_kind: str):
    """Dense bf16 peak FLOP/s of a GPU named ``device_kind``, or ``None`` when not in the table."""
    for name, peak in PEAK_BF16_FLOPS:
        if name.lower() in device_kind.lower():
            return peak
    return None


def keras_throughput(name: str, size: int, classes: int, batch: int, steps: int, warmup: int):
    """Images/s and forward FLOPs per image of a keras_resnets model trained with bf16 and XLA."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = keras_resnets.create_model(name, input_shape=(size, size, 3), classes=classes,
                                           classifier_activation=None)
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    finally:
        keras.config.set_dtype_policy("float32")
    flops_per_image = profile_model(model).flops
    rng = np.random.default_rng(0)
    images = jax.device_put(rng.standard_normal((batch, size, size, 3), dtype=np.float32))
    labels = jax.device_put(rng.integers(0, classes, batch).astype(np.int32))
    for _ in range(warmup):  # compilation
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(images, labels)  # returns a host float: each step is complete
    seconds = time.perf_counter() - started
    if not np.isfinite(loss):
        raise RuntimeError(f"{name}: loss is {loss}")
    return batch * steps / seconds, flops_per_image


def torchvision_throughput(size: int, batch: int, steps: int, warmup: int):
    """Images/s of torchvision ResNet-50 (torch.compile, channels_last, bf16 autocast) on CUDA.

    Returns:
        ``(images_per_second, None)``, or ``(None, reason)`` when the baseline cannot run here.
    """
    try:
        import torch
        import torchvision
    except ImportError as err:
        return None, f"PyTorch/torchvision not installed ({err.name})"
    if not torch.cuda.is_available():
        return None, "no CUDA device for PyTorch"
    model = torchvision.models.resnet50(num_classes=1000).cuda().to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    compiled = torch.compile(model)
    images = torch.randn(batch, 3, size, size, device="cuda").to(memory_format=torch.channels_last)
    labels = torch.randint(0, 1000, (batch,), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(compiled(images), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started), None


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50, help="timed steps per model (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--tiny", action="store_true", help="small sizes, batch 8, 3 steps: a CPU smoke run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    sizes = {name: size for name, size, _ in WORKLOADS}
    if args.tiny:
        sizes, args.batch, args.steps, args.warmup = TINY["sizes"], TINY["batch"], TINY["steps"], TINY["warmup"]

    device = jax.devices()[0]
    if device.platform != "gpu" and not args.tiny:
        print(f"bench_gpu_throughput: skipped: no GPU (JAX sees {device.platform}); --tiny runs a CPU smoke test")
        return {}
    peak = peak_flops(device.device_kind) if device.platform == "gpu" else None
    results = {
        "date": datetime.date.today().isoformat(),
        "device": f"{device.platform}: {device.device_kind}",
        "versions": {"jax": jax.__version__, "keras": keras.__version__},
        "batch": args.batch, "steps": args.steps, "precision": "bf16",
        "peak_bf16_flops": peak,
        "models": {},
    }
    print(f"{results['date']}  {results['device']}  batch {args.batch}  bf16  {args.steps} timed steps")
    for name, _, classes in WORKLOADS:
        images_per_second, flops = keras_throughput(name, sizes[name], classes, args.batch, args.steps, args.warmup)
        achieved = 3 * flops * images_per_second  # forward + backward ~ 3 x forward
        mfu = achieved / peak if peak else None
        results["models"][name] = {"size": sizes[name], "images_per_second": round(images_per_second, 1),
                                   "model_tflops_per_second": round(achieved / 1e12, 3),
                                   "mfu": round(mfu, 4) if mfu is not None else None}
        mfu_text = f"MFU {mfu:.1%}" if mfu is not None else "MFU n/a (no bf16 peak known for this device)"
        print(f"keras_resnets {name:<15} {sizes[name]:>3}px  {images_per_second:9.1f} images/s  "
              f"{achieved / 1e12:8.3f} model TFLOP/s  {mfu_text}")

    reference_size = sizes["resnet50"]
    torch_ips, reason = torchvision_throughput(reference_size, args.batch, args.steps, args.warmup)
    ours = results["models"]["resnet50"]["images_per_second"]
    if torch_ips is None:
        results["torchvision_resnet50"] = {"unavailable": reason}
        print(f"torchvision resnet50 (torch.compile, channels_last, bf16): unavailable: {reason}; no ratio")
    else:
        ratio = ours / torch_ips
        results["torchvision_resnet50"] = {"size": reference_size, "images_per_second": round(torch_ips, 1),
                                           "ratio_keras_resnets_over_torchvision": round(ratio, 3)}
        print(f"torchvision   resnet50        {reference_size:>3}px  {torch_ips:9.1f} images/s")
        print(f"ratio keras_resnets / torchvision (resnet50): {ratio:.2f}x (goal >= 1.0)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
