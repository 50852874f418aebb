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
import os
import sys

from keras_resnets.cli_args import DATA_FLAGS, RUN_FLAGS, add_options, keywords

FLAGS = (
    "--model", "--activation", "--model-arg", "--logits", *DATA_FLAGS, "--augment", "--expand",
    "--recipe", "--optimizer", "--epochs", "--batch-size", "--lr", "--momentum", "--weight-decay", "--weight-decay-mode",
    "--schedule", "--lr-ratio", "--warmup-steps", "--init-from", "--freeze",
    *RUN_FLAGS, "--continue-epochs", "--deterministic", "--precision", "--quiet", "--distribute",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``train`` options to ``parser``."""
    add_options(parser, FLAGS)


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; print a short summary and the run directory."""
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
    print(summary(result))
    return 0


def summary(result) -> str:
    """A few lines a person reads at the end of a run (the numbers are in ``metrics.json``)."""
    from keras_resnets.tasks import get_task
    from keras_resnets.training.results import not_learned_note

    m = result.metrics
    if m.get("status") != "completed" or "task" not in m:
        return f"run directory: {result.run_dir}"
    task = get_task(m["task"])

    def number(key: str) -> str:
        value = m.get(key)
        return "n/a" if value is None else f"{value:.4f}"

    session = m.get("epochs_this_session")
    lines = [f"finished {m['model']} on {m['dataset']}: {m['epochs']} epoch{'' if m['epochs'] == 1 else 's'}"
             + (f" ({session} this session, {m['train_seconds']:.0f} s, {m['train_images_per_second']:g} images/s)"
                if session else "") + f", {m['params']:,} parameters"]
    best_test = m.get(f"best_model_test_{task.metric}")
    lines.append(f"test {task.metric} {number('test_' + task.metric)} (final model)"
                 + (f", {best_test:.4f} (best model)" if best_test is not None else "")
                 + f"; best validation {task.metric} {number('best_' + task.monitor)}")
    per_class = m.get("test_per_class_iou")
    if per_class:
        lines.append("test IoU per class: " + ", ".join(
            f"{name} {'n/a' if v is None else f'{v:.2f}'}" for name, v in per_class.items()))
    note = not_learned_note(m, task)
    if note:
        lines.append(note)
    files = [os.path.basename(p) for p in result.paths.values() if isinstance(p, str) and os.path.isfile(p)]
    lines.append(f"run directory: {result.run_dir} ({', '.join(sorted(files))})")
    return "\n".join(lines)
