"""The ``keras-resnets`` command line: one entry point, one subcommand per task.

Each subcommand lives next to the code it drives (``keras_resnets/<part>/cli.py`` or
``keras_resnets/models/cli.py``) and exposes ``add_arguments(parser)`` and ``run(args) -> int``.
Modules are imported only when their subcommand runs, and TensorFlow only after the arguments parsed, so
``--help``, argument errors and ``keras-resnets list`` never load it. To add a subcommand, add a row to
``_COMMANDS``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from keras_resnets.environment import start_quietly

# The backend a subcommand loads: None (neither Keras nor TensorFlow), "keras" (TensorFlow only where it is
# Keras' backend), "tensorflow" (tf.data, the converter or KerasTuner).
# subcommand -> (module, one-line help, backend)
_COMMANDS = {
    "list": ("keras_resnets.models.cli_list", "list registered models (optionally matching a pattern)", None),
    "info": ("keras_resnets.models.cli_info", "parameters, FLOPs and per-stage output shapes of a model", "keras"),
    "train": ("keras_resnets.training.cli", "train a model on a dataset into a run directory (resumable)", "tensorflow"),
    "analyze": ("keras_resnets.training.analyze_cli", "parameters/FLOPs per model and per-unit gradient flow", "tensorflow"),
    "export": ("keras_resnets.export.cli", "export a run or .keras file to SavedModel or verified TFLite", "tensorflow"),
    "evaluate": ("keras_resnets.training.evaluate", "evaluate a run: centre crop, 10-crop, multi-scale (ImageNet protocols)", "tensorflow"),
    "tune": ("keras_resnets.tuning.cli", "search lr ratio, activation, augmentation, ... (grid, random, Bayesian, Hyperband)", "tensorflow"),
    "calibrate": ("keras_resnets.calibration", "measure which installed Keras backend trains a model fastest here (cached)", None),
    "reproduce": ("keras_resnets.experiments.cli", "rerun a paper's experiment (arms x seeds) and compute its verdicts", "tensorflow"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-resnets",
        description="Build, train, tune and export residual networks with Keras 3.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text, backend) in _COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module, _backend=backend)
        importlib.import_module(module).add_arguments(p)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if isinstance(getattr(args, "model", None), str):  # a mistyped name fails before anything heavy loads
            from keras_resnets.models.registry import get_entry

            get_entry(args.model)
        if args._backend is not None:
            start_quietly(uses_tensorflow=args._backend == "tensorflow")
        module = importlib.import_module(args._module)
        return int(module.run(args) or 0)
    except ValueError as err:  # bad input: one clear line, no traceback
        print(f"keras-resnets {args.command}: error: {err}", file=sys.stderr)
        return 2
    except ImportError as err:  # a pipeline that needs TensorFlow where it is not installed: one line too
        from keras_resnets.data.arrays import TensorFlowRequiredError

        if not isinstance(err, TensorFlowRequiredError):
            if (err.name or "").split(".")[0] not in _TENSORFLOW_MODULES:
                raise
            err = (f"{args.command} needs {err.name.split('.')[0]}, which is not installed here ({err}); without "
                   f"TensorFlow, train runs on the JAX backend with the in-memory datasets (digits, "
                   f"textured_digits, shapes)")
        print(f"keras-resnets {args.command}: error: {err}", file=sys.stderr)
        return 2


# Packages whose absence ends a subcommand with one line (a machine with JAX and Keras only).
_TENSORFLOW_MODULES = ("tensorflow", "tensorflow_datasets", "tensorflow_model_optimization", "tf_keras")


if __name__ == "__main__":
    sys.exit(main())
