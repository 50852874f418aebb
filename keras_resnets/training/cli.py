"""``keras-resnets train``: the command-line face of ``keras_resnets.training.train``.

Example::

    keras-resnets train --model cifar_resnet56 --dataset cifar10 --epochs 160 --lr-ratio 5:3:2 \\
        --activation relu --augment crop_flip
"""
from __future__ import annotations

import argparse
import json
import sys

from keras_resnets.cli_args import parse_image_size, parse_key_value

# Listed here for --help only (importing the modules that own them would load TensorFlow);
# train() validates every value against the owners' lists.
POLICIES = ("none", "crop", "crop_flip", "crop_flip_color_blur", "imagenet_scale", "inception_crop")
RECIPES = ("he2016_cifar", "he2016_cifar_warmup", "he2016_identity_cifar", "cifar10_study", "cosine",
           "he2016_imagenet", "imagenet_inception_crop", "digits_demo")
SCHEDULES = ("lr_ratio", "milestones", "cosine", "constant")
WEIGHT_DECAY_MODES = ("l2", "decoupled")
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
XLA_MODES = ("auto", "on", "off")
DISTRIBUTE_MODES = ("data_parallel", "mirrored")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    model = parser.add_argument_group("model")
    model.add_argument("--model", default="cifar_resnet20", help="registered model name (default: %(default)s)")
    model.add_argument("--activation", help="activation of the residual units (relu, leaky_relu, tanh, sigmoid, ...)")
    model.add_argument("--model-arg", action="append", type=parse_key_value, default=[], metavar="KEY=VALUE",
                       help="any other create_model keyword, e.g. depth=8 (repeatable)")
    model.add_argument("--logits", action="store_true", help="train a model that outputs logits (no softmax)")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="digits",
                      help="digits (embedded, offline), folder (with --data-dir), or a TFDS name such as "
                           "cifar10, cifar100, imagenette (default: %(default)s)")
    data.add_argument("--data-dir", help="TFDS data dir, or the image folder for --dataset folder")
    data.add_argument("--download", action="store_true", help="let TFDS download a missing dataset")
    data.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="resize images to this size")
    data.add_argument("--channels", type=int, choices=(1, 3), help="force 1 or 3 channels")
    data.add_argument("--validation-split", type=float, default=0.1, help="held-out share of train (default: %(default)s)")
    data.add_argument("--augment", help=f"augmentation policy: {', '.join(POLICIES)} (default: the recipe's)")
    data.add_argument("--expand", type=int,
                      help="add this many augmented copies of the training set once (static expansion) "
                           "instead of augmenting on the fly")

    recipe = parser.add_argument_group("recipe (each option overrides the recipe's value)")
    recipe.add_argument("--recipe", default="cifar10_study", help=f"{', '.join(RECIPES)} (default: %(default)s)")
    recipe.add_argument("--epochs", type=int)
    recipe.add_argument("--batch-size", type=int)
    recipe.add_argument("--lr", type=float, help="initial learning rate")
    recipe.add_argument("--momentum", type=float)
    recipe.add_argument("--weight-decay", type=float)
    recipe.add_argument("--weight-decay-mode", help=f"{', '.join(WEIGHT_DECAY_MODES)}")
    recipe.add_argument("--schedule", help=f"{', '.join(SCHEDULES)}")
    recipe.add_argument("--lr-ratio", help="share of training at lr:lr/10:lr/100, e.g. 2:1:1, 5:3:2, 5:4:1")
    recipe.add_argument("--warmup-steps", type=int, help="first iterations at lr/10")

    run = parser.add_argument_group("run")
    run.add_argument("--runs-dir", default="runs", help="parent of run directories (default: %(default)s)")
    run.add_argument("--run-name", help="run directory name (default: <model>-<dataset>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue --run-name from its last checkpoint")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--deterministic", action="store_true", help="bit-reproducible training (slower)")
    run.add_argument("--xla", default="auto", help=f"{', '.join(XLA_MODES)}: auto = on with GPU/TPU, off on CPU")
    run.add_argument("--precision", default="float32", help=f"{', '.join(PRECISIONS)}")
    run.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    run.add_argument("--distribute", help=f"data-parallel training: {', '.join(DISTRIBUTE_MODES)} "
                                          "(data_parallel: KERAS_BACKEND=jax, all devices, several machines via "
                                          "KERAS_DISTRIBUTION_* variables; mirrored: TensorFlow, one machine's GPUs; "
                                          "see docs/distributed.md)")


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; print the metrics and the run directory."""
    from keras_resnets.data import DatasetUnavailableError
    from keras_resnets.training import TrainingDivergedError, train

    try:
        result = train(
            args.model, args.dataset, recipe=args.recipe, epochs=args.epochs, batch_size=args.batch_size,
            lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
            weight_decay_mode=args.weight_decay_mode, schedule=args.schedule, lr_ratio=args.lr_ratio,
            warmup_steps=args.warmup_steps, augment=args.augment, expand=args.expand,
            activation=args.activation, model_kwargs=dict(args.model_arg),
            classifier_activation=None if args.logits else "softmax", data_dir=args.data_dir,
            image_size=args.image_size, channels=args.channels, validation_split=args.validation_split,
            download=args.download, runs_dir=args.runs_dir, run_name=args.run_name, resume=args.resume,
            seed=args.seed, deterministic=args.deterministic, xla=args.xla, precision=args.precision,
            distribute=args.distribute, verbose=2 if args.quiet else "auto",
        )
    except (DatasetUnavailableError, TrainingDivergedError) as err:
        print(f"keras-resnets train: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.metrics, indent=2))
    print(f"run directory: {result.run_dir}")
    return 0
