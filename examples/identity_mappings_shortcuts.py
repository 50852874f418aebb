"""The *Identity Mappings* shortcut ablation (Fig. 2) in miniature, offline on the embedded digits.

    python examples/identity_mappings_shortcuts.py [--depth 20] [--epochs 6]

Trains one CIFAR ResNet per shortcut type (every other setting equal) and prints test accuracy.
The paper ran ResNet-110 on CIFAR-10, where identity won; at this size the differences are small.
"""
import argparse

import keras_resnets
from keras_resnets.layers import SHORTCUTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    results = {}
    for shortcut in SHORTCUTS:
        run = keras_resnets.train("cifar_resnet20", "digits", recipe="digits_demo", epochs=args.epochs,
                                  model_kwargs={"depth": args.depth, "shortcut": shortcut},
                                  verbose=0)
        results[shortcut] = run.metrics["test_accuracy"]
        print(f"{shortcut:<22} test accuracy {results[shortcut]:.4f}   ({run.run_dir})")


if __name__ == "__main__":
    main()
