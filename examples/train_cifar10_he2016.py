"""Reproduce *Deep Residual Learning*'s CIFAR-10 setting: ResNet-20 ... 1202, 64k iterations.

    python examples/train_cifar10_he2016.py --depth 110 --data-dir ~/tensorflow_datasets

Needs CIFAR-10 prepared for TFDS in ``--data-dir`` (``tfds build cifar10 --data_dir DIR`` on a machine
with network access, or ``--download`` here if this machine has one). Without it the run stops at once
with a message saying where the files go. ResNet-110 and deeper warm up at lr 0.01 for 400 iterations,
as the paper does.

``SMALL=1`` (environment) makes it a smoke run: ResNet-8 for one epoch (CI runs it that way on
TFDS's offline mock data, ``tfds.testing.mock_data``).
"""
import argparse
import os

import keras_resnets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20, help="6n+2: 20, 32, 44, 56, 110 or 1202")
    parser.add_argument("--data-dir", default=None, help="TFDS data dir holding cifar10")
    parser.add_argument("--download", action="store_true", help="let TFDS download CIFAR-10 (needs network)")
    args = parser.parse_args()
    small = os.environ.get("SMALL", "0") not in ("", "0")
    depth = 8 if small else args.depth
    recipe = "he2016_cifar_warmup" if depth >= 110 else "he2016_cifar"
    result = keras_resnets.train("cifar_resnet20", "cifar10", recipe=recipe, model_kwargs={"depth": depth},
                                 data_dir=args.data_dir, download=args.download, epochs=1 if small else None,
                                 verbose=0 if small else "auto")
    print(f"test error {100 * (1 - result.metrics['test_accuracy']):.2f}% (paper: ResNet-20 8.75, ResNet-110 6.43)")
    print(f"run directory: {result.run_dir}")


if __name__ == "__main__":
    main()
