"""Argument types shared by the subcommands (plain Python: no Keras, no TensorFlow)."""
from __future__ import annotations

import argparse
import json
import sys


def parse_image_size(text: str):
    """``32`` or ``32x48`` -> (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) <= 0:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW with positive integers; got {text!r}")
    return size


def parse_key_value(text: str):
    """``KEY=VALUE`` -> (key, value), VALUE parsed as JSON when possible (``depth=8``, ``shortcut="conv"``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


class OwnedChoices:
    """The choices of a CLI option, read from the module that owns them, when first needed.

    ``argparse`` checks a given value with ``in`` and lists the choices in errors and ``--help``;
    both import the owner then, so building the parser stays TensorFlow-free and no choice list is
    written twice.

    Args:
        owner: ``"module:NAME"``; ``NAME`` is a sequence, a mapping (its keys) or a function returning one.
    """

    def __init__(self, owner: str):
        self.owner = owner

    def values(self) -> list:
        import importlib

        from keras_resnets.environment import start_quietly

        module, _, name = self.owner.partition(":")
        if module not in sys.modules:  # some owners sit beside TensorFlow code
            start_quietly()
        value = getattr(importlib.import_module(module), name)
        return list(value() if callable(value) else value)

    def __iter__(self):
        return iter(self.values())

    def __contains__(self, value) -> bool:
        return value in self.values()

    def __len__(self) -> int:
        return len(self.values())


def _choice(owner: str, help_text: str, **kwargs) -> dict:
    return dict(choices=OwnedChoices(owner), help=f"{help_text} (%(choices)s)", **kwargs)


# The option schema shared by the CLIs and by train()/tune(): option -> (group, argparse keywords).
# Each option's dest is the keyword of train()/tune() it sets, except those in KEYWORD_OF.
OPTIONS = {
    "--model": ("model", dict(default="cifar_resnet20", help="registered model name (default: %(default)s)")),
    "--activation": ("model", dict(help="activation of the residual units (relu, leaky_relu, tanh, sigmoid, ...)")),
    "--model-arg": ("model", dict(action="append", type=parse_key_value, default=[], metavar="KEY=VALUE",
                                  help="any other create_model keyword, e.g. depth=8 (repeatable)")),
    "--logits": ("model", dict(action="store_true", help="a classifier that outputs logits (no softmax); "
                                                          "segmentation models always output per-pixel logits")),
    "--dataset": ("data", dict(default="digits", help="a registered dataset (keras_resnets.data.registry: digits, "
                                                      "folder, shapes, oxford_iiit_pet, ...) or any TFDS "
                                                      "classification name (default: %(default)s)")),
    "--data-dir": ("data", dict(help="TFDS data dir, or the image folder for --dataset folder")),
    "--dataset-arg": ("data", dict(action="append", type=parse_key_value, default=[], metavar="KEY=VALUE",
                                   help="an option of the dataset's loader, e.g. num_train=256 for shapes (repeatable)")),
    "--download": ("data", dict(action="store_true", help="let TFDS download a missing dataset")),
    "--image-size": ("data", dict(type=parse_image_size, metavar="N|HxW", help="resize images to this size")),
    "--channels": ("data", dict(type=int, choices=(1, 3), help="force 1 or 3 channels")),
    "--validation-split": ("data", dict(type=float, default=0.1, help="held-out share of train (default: %(default)s)")),
    "--augment": ("data", _choice("keras_resnets.data.augment:POLICIES", "augmentation policy, default the recipe's",
                                  metavar="POLICY")),
    "--expand": ("data", dict(type=int, help="add this many augmented copies of the training set once (static "
                                             "expansion) instead of augmenting on the fly")),
    "--recipe": ("recipe", _choice("keras_resnets.training.recipes:RECIPES", "training recipe; default: the task's",
                                   metavar="RECIPE")),
    "--optimizer": ("recipe", _choice("keras_resnets.training.recipes:OPTIMIZERS", "optimizer, default the recipe's",
                                      metavar="NAME")),
    "--epochs": ("recipe", dict(type=int)),
    "--batch-size": ("recipe", dict(type=int)),
    "--lr": ("recipe", dict(type=float, help="initial learning rate")),
    "--momentum": ("recipe", dict(type=float)),
    "--weight-decay": ("recipe", dict(type=float)),
    "--weight-decay-mode": ("recipe", _choice("keras_resnets.training.recipes:WEIGHT_DECAY_MODES", "weight decay",
                                              metavar="MODE")),
    "--schedule": ("recipe", _choice("keras_resnets.training.schedules:SCHEDULES", "lr schedule", metavar="NAME")),
    "--lr-ratio": ("recipe", dict(help="share of training at lr:lr/10:lr/100, e.g. 2:1:1, 5:3:2, 5:4:1")),
    "--warmup-steps": ("recipe", dict(type=int, help="first iterations at lr/10")),
    "--init-from": ("recipe", dict(metavar="RUN", help="initialise the layers of the same name and shapes from this "
                                                        "run's model (staged training)")),
    "--freeze": ("recipe", _choice("keras_resnets.runs:FREEZE_MODES", "backbone: keep the layers loaded by "
                                   "--init-from fixed", default="none", metavar="WHAT")),
    "--runs-dir": ("run", dict(default="runs", help="parent of run directories (default: %(default)s)")),
    "--run-name": ("run", dict(help="run directory name (default: <model>-<dataset>-<time>)")),
    "--resume": ("run", dict(action="store_true", help="continue --run-name from its last checkpoint; a finished "
                                                       "run is left as it is")),
    "--continue-epochs": ("run", dict(type=int, metavar="N", help="with --resume: train N epochs more")),
    "--seed": ("run", dict(type=int, default=0)),
    "--deterministic": ("run", dict(action="store_true", help="bit-reproducible training (slower)")),
    "--xla": ("run", _choice("keras_resnets.training.steps:XLA_MODES", "auto = on with GPU/TPU, off on CPU",
                             default="auto", metavar="MODE")),
    "--precision": ("run", _choice("keras_resnets.training.steps:PRECISIONS", "compute precision",
                                   default="float32", metavar="POLICY")),
    "--quiet": ("run", dict(action="store_true", help="one line per epoch instead of a progress bar (the default "
                                                      "when the output is not a terminal)")),
    "--distribute": ("run", _choice("keras_resnets.training.distributed:DISTRIBUTE_MODES",
                                    "data-parallel training, see docs/distributed.md", metavar="MODE")),
}
# The options of keras_resnets.runs.DataOptions and RunOptions: the data and run options train and tune share.
DATA_FLAGS = ("--dataset", "--data-dir", "--dataset-arg", "--download", "--image-size", "--channels",
              "--validation-split")
RUN_FLAGS = ("--runs-dir", "--run-name", "--resume", "--seed", "--xla")
# CLI dest -> the train()/tune() keyword it becomes (the others keep their name).
KEYWORD_OF = {"model_arg": "model_kwargs", "dataset_arg": "dataset_kwargs", "logits": "classifier_activation",
              "quiet": "verbose"}


def add_options(parser: argparse.ArgumentParser, flags) -> None:
    """Add the shared ``OPTIONS`` named in ``flags`` to ``parser``, in their groups."""
    groups = {}
    for flag in flags:
        group, kwargs = OPTIONS[flag]
        if group not in groups:
            groups[group] = parser.add_argument_group(group)
        groups[group].add_argument(flag, **kwargs)


def keywords(args: argparse.Namespace, flags) -> dict:
    """The ``train()``/``tune()`` keywords of the shared options ``flags`` parsed into ``args``."""
    out = {}
    for flag in flags:
        dest = flag.lstrip("-").replace("-", "_")
        value = getattr(args, dest)
        if dest in ("model_arg", "dataset_arg"):
            value = dict(value)
        elif dest == "logits":
            value = None if value else "auto"
        elif dest == "quiet":
            value = 2 if value else "auto"
        out[KEYWORD_OF.get(dest, dest)] = value
    return out
