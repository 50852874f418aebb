"""Training: recipes, learning-rate schedules, and ``train`` in steps (plan, data, model, fit, results).

``train(model, dataset, ...)`` is the Python API of ``keras-resnets train`` (also exposed as
``keras_resnets.train``); ``compile_model`` and ``fit_model`` are the pieces it is made of.
Each name is imported from its module on first use, so the command line starts without TensorFlow.
"""
_LAZY = {
    "TrainingDivergedError": "keras_resnets.training.callbacks",
    "build_model": "keras_resnets.training.build",
    "compile_model": "keras_resnets.training.build",
    "load_matching_weights": "keras_resnets.training.build",
    "RunResult": "keras_resnets.training.loop",
    "fit_model": "keras_resnets.training.steps",
    "train": "keras_resnets.training.loop",
    "resolve_jit_compile": "keras_resnets.training.steps",
    "RECIPES": "keras_resnets.training.recipes",
    "Recipe": "keras_resnets.training.recipes",
    "get_recipe": "keras_resnets.training.recipes",
    "cosine_schedule": "keras_resnets.training.schedules",
    "lr_ratio_schedule": "keras_resnets.training.schedules",
    "milestone_schedule": "keras_resnets.training.schedules",
    "parse_lr_ratio": "keras_resnets.training.schedules",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        import importlib

        from keras_resnets.environment import start_quietly

        start_quietly()

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
