"""Training: recipes, learning-rate schedules, and ``train`` in steps (plan, data, model, fit, results).

``train(model, dataset, ...)`` is the Python API of ``keras-resnets train`` (also exposed as
``keras_resnets.train``); ``compile_model`` and ``fit_model`` are the pieces it is made of.
"""
from keras_resnets.training.callbacks import TrainingDivergedError
from keras_resnets.training.build import build_model, compile_model, load_matching_weights
from keras_resnets.training.loop import RunResult, fit_model, train
from keras_resnets.training.steps import resolve_jit_compile
from keras_resnets.training.recipes import RECIPES, Recipe, get_recipe
from keras_resnets.training.schedules import cosine_schedule, lr_ratio_schedule, milestone_schedule, parse_lr_ratio

__all__ = [
    "RECIPES",
    "Recipe",
    "RunResult",
    "TrainingDivergedError",
    "build_model",
    "compile_model",
    "cosine_schedule",
    "fit_model",
    "get_recipe",
    "load_matching_weights",
    "lr_ratio_schedule",
    "milestone_schedule",
    "parse_lr_ratio",
    "resolve_jit_compile",
    "train",
]
