"""Hyper-parameter search over the registered models (KerasTuner), in the CIFAR-10 study's terms.

``tune(model, dataset, space="study", tuner="hyperband", ...)`` is the Python API of
``keras-resnets tune``; ``render_report(dir)`` re-renders the results of a finished or partial
search. The pieces: ``SearchSpace`` (which values), ``ResNetHyperModel`` (one trial = one
``keras-resnets train`` run), ``build_tuner`` (grid, random, Bayesian, Hyperband).

TensorFlow and KerasTuner load on first use of ``tune``, ``ResNetHyperModel`` or ``build_tuner``.
"""
from keras_resnets.tuning.report import render_report
from keras_resnets.tuning.space import SPACE_KEYS, SPACES, SearchSpace

_LAZY = {
    "tune": "keras_resnets.tuning.search",
    "SearchResult": "keras_resnets.tuning.search",
    "ResNetHyperModel": "keras_resnets.tuning.hypermodel",
    "build_tuner": "keras_resnets.tuning.tuners",
    "make_objective": "keras_resnets.tuning.tuners",
    "TUNERS": "keras_resnets.tuning.tuners",
}

__all__ = ["SPACES", "SPACE_KEYS", "SearchSpace", "render_report", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        from keras_resnets.environment import start_quietly

        start_quietly()

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
