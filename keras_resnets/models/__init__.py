"""The model zoo (Keras only): generic builders, the named configurations and the registry.

The registry (names, families, descriptions) loads without Keras; the builders import it on first use.
"""
from keras_resnets.models.factory import create_model
from keras_resnets.models.registry import get_entry, list_models, register_model

_LAZY = {
    "CifarResNet": "keras_resnets.models.resnet",
    "ResNet": "keras_resnets.models.resnet",
    "CifarDenseNet": "keras_resnets.models.densenet",
    "DenseNet": "keras_resnets.models.densenet",
    "SegmentationNet": "keras_resnets.models.segmentation",
}

__all__ = [*_LAZY, "create_model", "get_entry", "list_models", "register_model"]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
