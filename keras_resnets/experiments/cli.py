"""``keras-resnets reproduce NAME``: rerun a paper's experiment and print its computed verdicts.

    keras-resnets reproduce degradation                      # laptop scale: offline, two CPU cores
    keras-resnets reproduce identity_mappings --arms identity full_preact
    keras-resnets reproduce degradation --scale paper --dataset cifar10   # CIFAR-10 via TFDS, a GPU

The results file (``notebooks/results/<stem>.json`` at the laptop scale) is rewritten after every
run, so an interrupted experiment continues where it stopped when the same command is run again.
"""
from __future__ import annotations

import os

from keras_resnets.experiments.spec import EXPERIMENTS, SCALES


_SCHEDULES = {"milestones": "/10 at 1/2 and 3/4", "lr_ratio": "by each cell's lr ratio", "constant": "constant",
              "cosine": "cosine"}


def _steps(budget) -> str:
    extra = f" + {budget.extra_steps} from its checkpoint" if budget.extra_steps else ""
    return f"{budget.steps} iterations{extra}"


def _epilog() -> str:
    lines = ["experiments (laptop scale: textured_digits or shapes, offline, up to an hour each on two CPU cores; "
             "paper scale: the paper's models and schedules on a TFDS dataset, for a GPU):"]
    for name, experiment in EXPERIMENTS.items():
        laptop, paper = experiment.budget_at("laptop"), experiment.budget_at("paper")
        models = sorted({arm.model for arm in experiment.arms_at("paper")})
        lines.append(f"  {name:<18} {experiment.title} (notebooks/{experiment.notebook_stem}.ipynb)")
        lines.append(f"  {'':<18} laptop: {len(experiment.arms_at('laptop'))} arms x {laptop.seeds} seeds, "
                     f"{'x'.join(map(str, laptop.image_size))} images, {_steps(laptop)}; paper: {paper.dataset}, "
                     f"{_steps(paper)} of batch {paper.batch_size}, lr {paper.lr} {_SCHEDULES[paper.schedule]}, "
                     f"{paper.warmup_steps} warm-up iterations, {', '.join(models)}")
    from keras_resnets.experiments.edge import MEASUREMENTS

    lines += ["", "measurements (no paper claim, no verdict; laptop and smoke scales):"]
    for name, measurement in MEASUREMENTS.items():
        lines.append(f"  {name:<18} {measurement.title} (notebooks/{measurement.stem}.ipynb)")
    lines += ["", "--scale paper needs the dataset in TFDS's data dir (prepared beforehand: no download here)."]
    return "\n".join(lines)


def add_arguments(parser) -> None:
    import argparse

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _epilog()
    from keras_resnets.experiments.edge import MEASUREMENTS

    parser.add_argument("name", metavar="NAME", choices=list(EXPERIMENTS) + list(MEASUREMENTS),
                        help=f"experiment: {', '.join(EXPERIMENTS)}; measurement: {', '.join(MEASUREMENTS)}")
    parser.add_argument("--scale", default="laptop", choices=SCALES,
                        help="laptop (default), paper or smoke (a few steps, one seed)")
    parser.add_argument("--dataset", default=None, help="dataset instead of the scale's (e.g. cifar10)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the scale's; 3)")
    parser.add_argument("--arms", nargs="+", default=None, help="run only these arms (labels)")
    parser.add_argument("--results-dir", default=os.path.join("notebooks", "results"),
                        help="where <stem>.json goes (default notebooks/results)")
    parser.add_argument("--figures-dir", default=os.path.join("notebooks", "figures"),
                        help="where <stem>.png goes (default notebooks/figures)")


def run(args) -> int:
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # measured faster for these small nets on CPU
    from keras_resnets.experiments.edge import MEASUREMENTS

    if args.name in MEASUREMENTS:
        return _measure(args)
    from keras_resnets.experiments.runner import run_experiment

    results = run_experiment(args.name, scale=args.scale, seeds=args.seeds, dataset=args.dataset, arms=args.arms,
                             results_dir=args.results_dir, figures_dir=args.figures_dir,
                             progress=lambda line: print(line, flush=True))
    from keras_resnets.experiments.report import arms_table, verdicts_table

    print(f"{results['title']} [{results['scale']}, {results['dataset']}]: {results['summary']}")
    print(arms_table(results))
    print(verdicts_table(results))
    print(f"results: {results['path']}")
    return 0


def _measure(args) -> int:
    from keras_resnets.experiments.edge import MEASUREMENTS, run_edge_deployment
    from keras_resnets.experiments.report import edge_table

    given = [flag for flag, value in (("--dataset", args.dataset), ("--seeds", args.seeds), ("--arms", args.arms))
             if value is not None]
    if given:
        raise ValueError(f"{given[0]} applies to experiments only; {args.name} is a measurement of one "
                         f"classifier (allowed options: --scale, --results-dir, --figures-dir)")
    MEASUREMENTS[args.name].budget_at(args.scale)  # a scale it lacks fails here, in one line
    results = run_edge_deployment(args.scale, results_dir=args.results_dir, figures_dir=args.figures_dir,
                                  progress=lambda line: print(line, flush=True))
    print(f"{results['title']} [{results['scale']}]: {results['summary']}")
    print(edge_table(results))
    print(f"results: {results['path']}")
    return 0
