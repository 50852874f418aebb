"""The model zoo (Keras only): generic builders, the named configurations and the registry."""
from keras_resnets.models.registry import create_model, get_entry, list_models, register_model
from keras_resnets.models.resnet import CifarResNet, ResNet
from keras_resnets.models.densenet import CifarDenseNet, DenseNet
from keras_resnets.models.segmentation import SegmentationNet

__all__ = [
    "CifarDenseNet", "CifarResNet", "DenseNet", "ResNet", "SegmentationNet",
    "create_model", "get_entry", "list_models", "register_model",
]
