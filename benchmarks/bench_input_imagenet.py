"""JPEG decode + ImageNet augmentation: our streaming pipeline vs ``keras.utils.image_dataset_from_directory``.

One run, on one generated folder of photo-like JPEGs (smooth colour fields, 256 x 256..340, ~15 KB):

1. **Throughput** (images/s at 224x224, batch 64) of
   - ours: ``load_dataset("folder", augment="imagenet_scale")`` (scale augmentation [256, 480],
     random 224 crop, flip, PCA lighting, normalisation; JPEGs decode only the cropped window), and
   - the baseline: ``image_dataset_from_directory(image_size=(256, 256))`` + Keras ``RandomCrop(224)``
     + ``RandomFlip`` + the same normalisation, ``AUTOTUNE`` maps and prefetch,
   alternated (ours, keras, ours, keras) so that load changes on the shared machine hit both; the
   best round of each is compared and the ratio printed.
2. **Time to first batch (wall and CPU seconds, from ``load_dataset`` on, after imports) and peak
   memory** (a fresh process each, ``ru_maxrss``) of our pipeline on
   folders of 2,000, 6,000 and 20,000 JPEGs, after reading ``--batches`` batches: flat as the
   folder grows. The in-memory loader on 1,000 JPEGs is measured alongside for reference.

Usage::

    python benchmarks/bench_input_imagenet.py [--workdir /tmp/bench_jpegs] [--out benchmarks/results/bench_input_imagenet.json]

The folders are generated once under ``--workdir`` (20,000 files, ~300 MB) and reused.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

BATCH = 64
SIZE = 224
SIZES = (2000, 6000, 20000)
CLASSES = 10


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except Exception:
        return platform.processor() or "unknown"


def generate_pool(pool: str, count: int) -> None:
    """``count`` photo-like JPEGs in ``pool`` (smooth colour fields, varied sizes), made once."""
    import numpy as np
    from PIL import Image

    os.makedirs(pool, exist_ok=True)
    existing = len(os.listdir(pool))
    if existing >= count:
        return
    rng = np.random.default_rng(0)
    bases = []
    for _ in range(32):
        height, width = 256, int(rng.integers(256, 341))
        coarse = rng.integers(0, 256, size=(5, 6, 3)).astype(np.uint8)
        smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC), np.int16)
        bases.append(smooth + rng.integers(-6, 7, size=smooth.shape, dtype=np.int16))
    for i in range(existing, count):
        image = np.clip(bases[i % 32] + int(rng.integers(-40, 41)), 0, 255).astype(np.uint8)
        Image.fromarray(image).save(os.path.join(pool, f"{i:06d}.jpg"), quality=90)
        if i % 2000 == 0:
            print(f"  generated {i}/{count} JPEGs", flush=True)


def class_folder(workdir: str, count: int) -> str:
    """A folder of ``count`` pool images in ``CLASSES`` class sub-folders (symbolic links)."""
    root = os.path.join(workdir, f"folder_{count}")
    if os.path.isdir(root):
        return root
    pool = os.path.join(workdir, "pool")
    for i in range(count):
        class_dir = os.path.join(root, f"class_{i % CLASSES:02d}")
        os.makedirs(class_dir, exist_ok=True)
        os.symlink(os.path.join(pool, f"{i:06d}.jpg"), os.path.join(class_dir, f"{i:06d}.jpg"))
    return root


def ours(folder: str):
    from keras_resnets.data import load_dataset

    data = load_dataset("folder", data_dir=folder, batch_size=BATCH, augment="imagenet_scale",
                        image_size=(SIZE, SIZE), validation_split=0.1, seed=0)
    return data.train(epochs=100)


def keras_baseline(folder: str):
    import keras
    import tensorflow as tf

    ds = keras.utils.image_dataset_from_directory(folder, image_size=(256, 256), batch_size=BATCH, shuffle=True,
                                                  seed=0, verbose=False)
    augment = keras.Sequential([keras.layers.RandomCrop(SIZE, SIZE), keras.layers.RandomFlip("horizontal")])
    mean, std = tf.constant([124.0, 116.0, 104.0]), tf.constant([58.0, 57.0, 57.0])
    ds = ds.map(lambda x, y: ((augment(x, training=True) - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.repeat().prefetch(tf.data.AUTOTUNE)


def throughput(pipeline, batches: int, warmup: int = 5) -> float:
    iterator = iter(pipeline)
    for _ in range(warmup):
        next(iterator)
    started, count = time.perf_counter(), 0
    for _ in range(batches):
        images, _ = next(iterator)
        count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def cpu_seconds() -> float:
    """CPU time of this process, all threads: a figure that does not depend on the machine's load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def child(folder: str, batches: int, streaming: bool) -> None:
    """Print time to first batch and peak memory of one fresh pipeline (run in a subprocess)."""
    started = time.perf_counter()
    import tensorflow  # noqa: F401

    from keras_resnets.data import load_dataset

    imported = time.perf_counter()
    cpu_imported = cpu_seconds()
    data = load_dataset("folder", data_dir=folder, batch_size=BATCH, augment="imagenet_scale" if streaming else "crop_flip",
                        image_size=(SIZE, SIZE), validation_split=0.1, seed=0, streaming=streaming)
    iterator = iter(data.train(epochs=100))
    next(iterator)
    first = time.perf_counter()
    cpu_first = cpu_seconds()
    for _ in range(batches - 1):
        next(iterator)
    print(json.dumps({
        "import_s": round(imported - started, 2),
        "time_to_first_batch_s": round(first - imported, 2),
        "cpu_s_to_first_batch": round(cpu_first - cpu_imported, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "batches_read": batches,
    }))


def measure_child(folder: str, batches: int, streaming: bool = True) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", folder, "--batches", str(batches)]
                         + ([] if streaming else ["--in-memory"]), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", default="/tmp/bench_input_jpegs")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_input_imagenet.json"))
    parser.add_argument("--batches", type=int, default=30, help="batches per throughput round / memory run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child")
    parser.add_argument("--in-memory", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.batches, streaming=not args.in_memory)
        return

    print(f"CPU: {cpu_name()}, {os.cpu_count()} cores (shared; timings are noisy)", flush=True)
    generate_pool(os.path.join(args.workdir, "pool"), max(SIZES))
    folders = {n: class_folder(args.workdir, n) for n in SIZES}

    rates = {"ours": [], "keras": []}
    for round_index in range(args.rounds):
        for name, build in (("ours", ours), ("keras", keras_baseline)):
            rate = throughput(build(folders[6000]), args.batches)
            rates[name].append(round(rate, 1))
            print(f"  round {round_index + 1} {name:<6}{rate:>10,.1f} images/s", flush=True)
    ratio = max(rates["ours"]) / max(rates["keras"])
    print(f"throughput ratio ours / image_dataset_from_directory: {ratio:.2f}x (goal >= 1.0x)")

    memory = {}
    for n in SIZES:
        memory[str(n)] = measure_child(folders[n], args.batches)
        print(f"  streaming, {n:>6} JPEGs: {memory[str(n)]}", flush=True)
    reference = class_folder(args.workdir, 1000)
    in_memory = measure_child(reference, 3, streaming=False)
    print(f"  in-memory loader, 1000 JPEGs: {in_memory}", flush=True)

    result = {
        "benchmark": "bench_input_imagenet",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "note": "shared, loaded machine (other jobs running); best of alternated rounds",
        "load_average_at_end": [round(v, 2) for v in os.getloadavg()],
        "image_size": SIZE,
        "batch_size": BATCH,
        "throughput_images_per_s": rates,
        "ratio_ours_over_keras": round(ratio, 2),
        "streaming_by_folder_size": memory,
        "in_memory_1000_jpegs": in_memory,
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
