"""``keras-resnets tune``: the command-line face of ``keras_resnets.tuning.tune``.

Examples::

    keras-resnets tune --model cifar_resnet20 --dataset digits --space study --tuner hyperband --max-epochs 10
    keras-resnets tune --space study --space-arg activation=relu,leaky_relu --tuner grid --run-name grid1
    keras-resnets tune --run-name grid1 --resume            # after a kill: finished trials are kept
    keras-resnets tune --report runs/grid1                  # re-render table, heatmap, best config
"""
from __future__ import annotations

import argparse
import sys

# Listed here for --help only (the owning modules load TensorFlow); tune() validates every value.
TUNERS = ("grid", "random", "bayesian", "hyperband")
SPACE_NAMES = ("study", "study_continuous", "study_optimizer")
SPACE_KEYS = ("augment", "activation", "lr_ratio", "lr", "weight_decay", "batch_size", "depth", "unit", "shortcut")
OBJECTIVES = ("val_accuracy", "val_loss", "accuracy", "loss")


def _space_arg(text: str):
    from keras_resnets.tuning.space import parse_space_override

    try:
        return parse_space_override(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tune`` options to ``parser``."""
    from keras_resnets.cli_args import parse_image_size, parse_key_value

    parser.add_argument("--report", metavar="DIR",
                        help="only re-render the results of a finished or partial search (run or tune/ directory)")

    search = parser.add_argument_group("search")
    search.add_argument("--space", default="study",
                        help=f"search space: {', '.join(SPACE_NAMES)} (default: %(default)s, the CIFAR-10 study's "
                             f"3 lr ratios x 4 activations x 3 augmentations)")
    search.add_argument("--space-arg", action="append", type=_space_arg, default=[], metavar="KEY=V1,V2",
                        help=f"set the values of one key (repeatable; an empty list removes it); keys: "
                             f"{', '.join(SPACE_KEYS)}; lr_ratio=continuous tunes the three shares as numbers")
    search.add_argument("--tuner", default="grid", help=f"{', '.join(TUNERS)} (default: %(default)s)")
    search.add_argument("--objective", default="val_accuracy", help=f"{', '.join(OBJECTIVES)} (default: %(default)s)")
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

    model = parser.add_argument_group("model and recipe")
    model.add_argument("--model", default="cifar_resnet20", help="registered model name (default: %(default)s)")
    model.add_argument("--model-arg", action="append", type=parse_key_value, default=[], metavar="KEY=VALUE",
                       help="fixed create_model keyword, e.g. depth=8 (repeatable)")
    model.add_argument("--logits", action="store_true", help="models output logits (no softmax)")
    model.add_argument("--recipe", default="cifar10_study",
                       help="training recipe for every value the space does not set (default: %(default)s)")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="digits", help="digits (embedded, offline), folder, or a TFDS name")
    data.add_argument("--data-dir", help="TFDS data dir, or the image folder for --dataset folder")
    data.add_argument("--download", action="store_true", help="let TFDS download a missing dataset")
    data.add_argument("--image-size", type=parse_image_size, metavar="N|HxW", help="resize images to this size")
    data.add_argument("--channels", type=int, choices=(1, 3), help="force 1 or 3 channels")
    data.add_argument("--validation-split", type=float, default=0.1,
                      help="held-out share of train; the objective's val_ metrics use it (default: %(default)s)")

    run = parser.add_argument_group("run")
    run.add_argument("--runs-dir", default="runs", help="parent of run directories (default: %(default)s)")
    run.add_argument("--run-name", help="run directory name (default: tune-<model>-<dataset>-<time>)")
    run.add_argument("--resume", action="store_true", help="continue --run-name's search; finished trials are kept")
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--xla", default="auto", help="auto (on with GPU/TPU, off on CPU), on, off")
    run.add_argument("--fit-verbose", type=int, default=0, choices=(0, 1, 2),
                     help="Keras progress inside each trial (default 0: one line per trial)")


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
                args.model, args.dataset, space=args.space, space_overrides=dict(args.space_arg), tuner=args.tuner,
                objective=args.objective, direction=args.direction, max_epochs=args.max_epochs,
                max_trials=args.max_trials, factor=args.factor, executions_per_trial=args.executions_per_trial,
                early_stopping_patience=args.early_stopping, recipe=args.recipe, model_kwargs=dict(args.model_arg),
                classifier_activation=None if args.logits else "softmax", data_dir=args.data_dir,
                image_size=args.image_size, channels=args.channels, validation_split=args.validation_split,
                download=args.download, runs_dir=args.runs_dir, run_name=args.run_name, resume=args.resume,
                seed=args.seed, xla=args.xla, verbose=args.fit_verbose,
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
