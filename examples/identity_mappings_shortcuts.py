"""The *Identity Mappings* shortcut ablation (Fig. 2) in miniature, offline on the embedded digits.

    python examples/identity_mappings_shortcuts.py [--depth 20] [--epochs 6]

Trains one CIFAR ResNet per shortcut type (every other setting equal) and prints test accuracy.
The paper ran ResNet-110 on CIFAR-10, where identity won; at this size the differences are small.
``SMALL=1`` (environment) makes it a smoke run: depth 8, one epoch. The measured version, with
three seeds on the harder ``textured_digits``, is ``notebooks/02_identity_mappings.ipynb``.
"""
import argparse
import os

import keras_resnets
from keras_resnets.layers import SHORTCUTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    if os.environ.get("SMALL", "0") not in ("", "0"):
        args.depth, args.epochs = 8, 1
    results = {}
    for shortcut in SHORTCUTS:
        run = keras_resnets.train("cifar_resnet20", "digits", recipe="digits_demo", epochs=args.epochs,
                                  model_kwargs={"depth": args.depth, "shortcut": shortcut},
                                  verbose=0)
        results[shortcut] = run.metrics["test_accuracy"]
        print(f"{shortcut:<22} test accuracy {results[shortcut]:.4f}   ({run.run_dir})")


if __name__ == "__main__":
    main()
