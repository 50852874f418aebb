"""The model zoo (Keras only): generic builders, the named configurations and the registry."""
from keras_resnets.models.registry import create_model, get_entry, list_models, register_model
from keras_resnets.models.resnet import CifarResNet, ResNet

__all__ = ["CifarResNet", "ResNet", "create_model", "get_entry", "list_models", "register_model"]
