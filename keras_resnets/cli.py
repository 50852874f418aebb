"""The ``keras-resnets`` command line: one entry point, one subcommand per task.

Each subcommand lives next to the code it drives (``keras_resnets/<part>/cli.py`` or
``keras_resnets/models/cli.py``) and exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their subcommand runs, so ``keras-resnets list`` never loads
TensorFlow.
"""
from __future__ import annotations

import argparse
import os
import importlib
import sys

# subcommand -> (module, one-line help)
_COMMANDS = {
    "list": ("keras_resnets.models.cli_list", "list registered models (optionally matching a pattern)"),
    "info": ("keras_resnets.models.cli_info", "parameters, FLOPs and per-stage output shapes of a model"),
    "train": ("keras_resnets.training.cli", "train a model on a dataset into a run directory (resumable)"),
    "analyze": ("keras_resnets.training.analyze_cli", "parameters/FLOPs per model and per-unit gradient flow"),
    "export": ("keras_resnets.export.cli", "export a run or .keras file to SavedModel or verified TFLite"),
    "evaluate": ("keras_resnets.training.evaluate", "evaluate a run: centre crop, 10-crop, multi-scale (ImageNet protocols)"),
    "tune": ("keras_resnets.tuning.cli", "search lr ratio, activation, augmentation, ... (grid, random, Bayesian, Hyperband)"),
    "reproduce": ("keras_resnets.experiments.cli", "rerun a paper's experiment (arms x seeds) and compute its verdicts"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-resnets",
        description="Build, train, tune and export residual networks with Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output
    parser = build_parser()
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    try:
        return int(module.run(args) or 0)
    except ValueError as err:  # bad input: one clear line, no traceback
        print(f"keras-resnets {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # a pipeline that needs TensorFlow where it is not installed: one line too
        from keras_resnets.data.arrays import TensorFlowRequiredError

        if not isinstance(err, TensorFlowRequiredError):
            raise
        print(f"keras-resnets {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
