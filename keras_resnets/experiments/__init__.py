"""The papers' claims as experiments with pre-registered verdict rules (see ``spec`` and ``verdicts``).

    >>> from keras_resnets.experiments import list_experiments
    >>> list_experiments()
    ['degradation', 'identity_mappings', 'densenet', 'dilated_context', 'cifar10_study']

``run_experiment(name, scale="laptop" | "paper", seeds=..., dataset=...)`` (or
``keras-resnets reproduce NAME``) trains every arm x seed (a grid: every cell; the context module: a
front-end checkpoint per seed and its two continuations) and writes ``notebooks/results/<stem>.json``
and a figure.
"""
from keras_resnets.experiments.spec import (  # noqa: F401
    EXPERIMENTS,
    SCALES,
    Arm,
    Budget,
    Experiment,
    get_experiment,
    list_experiments,
)
from keras_resnets.experiments.verdicts import Rule, judge, summarise  # noqa: F401


def run_experiment(name, scale="laptop", seeds=None, dataset=None, **kwargs):
    """See ``keras_resnets.experiments.runner.run_experiment``."""
    from keras_resnets.experiments.runner import run_experiment as run

    return run(name, scale=scale, seeds=seeds, dataset=dataset, **kwargs)
