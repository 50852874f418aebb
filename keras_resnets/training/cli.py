"""``keras-resnets train``: the command-line face of ``keras_resnets.training.train``.

Examples::

    keras-resnets train --model cifar_resnet56 --dataset cifar10 --epochs 160 --lr-ratio 5:3:2 \\
        --activation relu --augment crop_flip
    keras-resnets train --model dilated_resnet18_seg --dataset shapes
    keras-resnets train --model dilated_resnet18_seg --dataset shapes --model-arg context=null --run-name front
    keras-resnets train --model dilated_resnet18_seg --dataset shapes --init-from runs/front --freeze backbone

The options and their choices come from ``keras_resnets.cli_args.OPTIONS``, shared with ``tune``.
"""
from __future__ import annotations

import argparse
import json
import sys

from keras_resnets.cli_args import add_options, keywords

FLAGS = (
    "--model", "--activation", "--model-arg", "--logits",
    "--dataset", "--data-dir", "--dataset-arg", "--download", "--image-size", "--channels", "--validation-split",
    "--augment", "--expand",
    "--recipe", "--optimizer", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--weight-decay-mode",
    "--schedule", "--lr-ratio", "--warmup-steps", "--init-from", "--freeze",
    "--runs-dir", "--run-name", "--resume", "--continue-epochs", "--seed", "--deterministic", "--xla",
    "--precision", "--quiet", "--distribute",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    add_options(parser, FLAGS)


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; print the metrics and the run directory."""
    from keras_resnets.data import DatasetUnavailableError
    from keras_resnets.runs import RunWriteError
    from keras_resnets.training import TrainingDivergedError, train

    try:
        result = train(**keywords(args, FLAGS))
    except TrainingDivergedError as err:  # a refusal of the settings, like a bad value: status 2
        print(f"keras-resnets train: error: {err}", file=sys.stderr)
        return 2
    except (DatasetUnavailableError, RunWriteError) as err:
        print(f"keras-resnets train: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result.metrics, indent=2))
    print(f"run directory: {result.run_dir}")
    return 0
