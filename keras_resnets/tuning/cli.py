"""``keras-resnets tune``: the command-line face of ``keras_resnets.tuning.tune``.

Examples::

    keras-resnets tune --model cifar_resnet20 --dataset digits --space study --tuner hyperband --max-epochs 10
    keras-resnets tune --space study --space-arg activation=relu,leaky_relu --tuner grid --run-name grid1
    keras-resnets tune --run-name grid1 --resume            # after a kill: finished trials are kept
    keras-resnets tune --report runs/grid1                  # re-render table, heatmap, best config
    keras-resnets tune --model dilated_resnet18_seg --dataset shapes --space-arg lr=0.02,0.05 \\
        --objective val_mean_iou --max-epochs 4

The model, data and run options are the ones of ``train`` (``keras_resnets.cli_args.OPTIONS``).
"""
from __future__ import annotations

import argparse
import sys

from keras_resnets.cli_args import DATA_FLAGS, RUN_FLAGS, OwnedChoices, add_options, keywords

SHARED_FLAGS = ("--model", "--model-arg", "--logits", "--recipe", *DATA_FLAGS, *RUN_FLAGS)


def _space_arg(text: str):
    from keras_resnets.tuning.space import parse_space_override

    try:
        return parse_space_override(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tune`` options to ``parser``."""
    parser.add_argument("--report", metavar="DIR",
                        help="only re-render the results of a finished or partial search (run or tune/ directory)")

    search = parser.add_argument_group("search")
    search.add_argument("--space", choices=OwnedChoices("keras_resnets.tuning.space:SPACES"),
                        metavar="NAME", help="search space (%(choices)s; default: the task's: study, the CIFAR-10 "
                                             "study's 3 lr ratios x 4 activations x 3 augmentations, for "
                                             "classification; segmentation_lr, 3 learning rates, for segmentation)")
    search.add_argument("--space-arg", action="append", type=_space_arg, default=[], metavar="KEY=V1,V2",
                        help="set the values of one key (repeatable; an empty list removes it); lr_ratio=continuous "
                             "tunes the three shares as numbers")
    search.add_argument("--tuner", default="grid", choices=OwnedChoices("keras_resnets.tuning.tuners:TUNERS"),
                        metavar="NAME", help="%(choices)s (default: %(default)s)")
    search.add_argument("--objective", choices=OwnedChoices("keras_resnets.tasks:all_objectives"), metavar="METRIC",
                        help="%(choices)s (default: val_accuracy for classification, val_mean_iou for segmentation)")
    search.add_argument("--direction", help="max or min (default: min for losses, max otherwise)")
    search.add_argument("--max-epochs", type=int, default=10,
                        help="epochs per trial; Hyperband: the largest budget (default: %(default)s)")
    search.add_argument("--max-trials", type=int,
                        help="trials of random/bayesian (default 10); caps grid (default: the whole grid)")
    search.add_argument("--factor", type=int, default=3, help="Hyperband reduction factor (default: %(default)s)")
    search.add_argument("--executions-per-trial", type=int, default=1,
                        help="trainings per trial, averaged, for noisy objectives (default: %(default)s)")
    search.add_argument("--early-stopping", type=int, metavar="PATIENCE",
                        help="stop a trial after PATIENCE epochs without improving the objective")
    search.add_argument("--fit-verbose", type=int, default=0, choices=(0, 1, 2),
                        help="Keras progress inside each trial (default 0: one line per trial)")
    add_options(parser, SHARED_FLAGS)


def run(args: argparse.Namespace) -> int:
    """Run the search (or only render its report); print where the results are."""
    from keras_resnets.tuning.report import render_report

    if args.report:
        report = render_report(args.report)
    else:
        from keras_resnets.data import DatasetUnavailableError
        from keras_resnets.tuning.search import tune

        try:
            result = tune(
                **keywords(args, SHARED_FLAGS), space=args.space, space_overrides=dict(args.space_arg),
                tuner=args.tuner, objective=args.objective, direction=args.direction, max_epochs=args.max_epochs,
                max_trials=args.max_trials, factor=args.factor, executions_per_trial=args.executions_per_trial,
                early_stopping_patience=args.early_stopping, verbose=args.fit_verbose,
            )
        except DatasetUnavailableError as err:
            print(f"keras-resnets tune: error: {err}", file=sys.stderr)
            return 1
        if not result.paths:
            print(f"worker done; the chief renders the report in {result.tune_dir}")
            return 0
        report = {"best": result.best, "paths": result.paths}
    with open(report["paths"]["results.md"]) as f:
        print(f.read())
    for name, path in report["paths"].items():
        print(f"  {name:<17} {path}")
    return 0
