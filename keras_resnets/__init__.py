"""keras_resnets: residual networks for Keras 3 — build, train, tune and ship them.

Model code (``keras_resnets.layers``, ``keras_resnets.models``) is pure Keras and runs on any backend;
training, tuning and export use TensorFlow and are imported on first use (training on the in-memory
datasets also runs without TensorFlow, on JAX: ``keras_resnets.data.arrays``).
"""
from keras_resnets.environment import apply_tensorflow_defaults

apply_tensorflow_defaults()  # before anything imports TensorFlow (Keras does, on its TensorFlow backend)

from keras_resnets.models import create_model, get_entry, list_models  # noqa: E402

__version__ = "0.1.0"

# Importing the package loads neither Keras nor TensorFlow: the registry's names come from a catalog, and
# these entry points (and the builders behind create_model) import their modules on first use.
_LAZY = {
    "from_keras_applications": "keras_resnets.models.port",
    "profile_model": "keras_resnets.models.profile",
    "train": "keras_resnets.training",
    "tune": "keras_resnets.tuning",
    "export_model": "keras_resnets.export",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        from keras_resnets.environment import start_quietly

        start_quietly()

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_resnets' has no attribute {name!r}")


__all__ = ["create_model", "list_models", "get_entry", *_LAZY]
