"""Input-pipeline throughput: CIFAR-size images (32x32x3), batch 128, ``crop_flip`` on the fly.

Uses 50,000 random uint8 images (CIFAR-10's training-set size) so it runs offline; the pipeline is
the one training uses (``Datasets.train``). Goal on two CPU cores: >= 10,000 images/s.
Prints images/s per policy and the ratio to the goal.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from keras_resnets.data.datasets import Datasets, DatasetInfo, _eval_pipeline  # noqa: E402

GOAL = 10_000
IMAGES, BATCH, EPOCHS = 50_000, 128, 2


def cifar_like(augment: str) -> Datasets:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=IMAGES, dtype=np.int32)
    info = DatasetInfo("random-cifar", 10, tuple(str(i) for i in range(10)), (32, 32, 3),
                       (125.3, 123.0, 113.9), (63.0, 62.1, 66.7), IMAGES)
    small = _eval_pipeline(images[:256], labels[:256], info, BATCH)
    return Datasets(info, BATCH, augment, 0, small, small, images, labels)


def throughput(augment: str) -> float:
    data = cifar_like(augment)
    pipeline = data.train(EPOCHS)
    iterator = iter(pipeline)
    for _ in range(20):  # warm-up: graph tracing and the first prefetches
        next(iterator)
    count, started = 0, time.perf_counter()
    for images, _ in iterator:
        count += int(images.shape[0])
    return count / (time.perf_counter() - started)


def main():
    print(f"input pipeline, {IMAGES} images 32x32x3, batch {BATCH}, {os.cpu_count()} CPU cores")
    results = {}
    for policy in ("none", "crop_flip", "crop_flip_color_blur"):
        results[policy] = throughput(policy)
        print(f"  {policy:<22}{results[policy]:>12,.0f} images/s")
    print(f"crop_flip ratio to the {GOAL:,} images/s goal: {results['crop_flip'] / GOAL:.2f}x")


if __name__ == "__main__":
    main()
