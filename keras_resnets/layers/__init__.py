"""Building blocks: residual units, shortcuts, dense blocks, the context module (Keras only)."""
from keras_resnets.layers.activations import activation_layer, known_activations, resolve_activation
from keras_resnets.layers.context import ContextIdentity, context_module
from keras_resnets.layers.dense import dense_block, dense_layer, transition_layer
from keras_resnets.layers.regularization import StochasticDepth
from keras_resnets.layers.shortcuts import DOWNSAMPLING, SHORTCUTS, ChannelZeroPad
from keras_resnets.layers.units import MERGES, PLACEMENTS, UNIT_KINDS, UnitSpec, conv2d, residual_unit
import keras_resnets.metrics  # noqa: F401,E402  registers MeanIoU/PixelAccuracy so compiled segmentation runs load

__all__ = [
    "ChannelZeroPad",
    "ContextIdentity",
    "DOWNSAMPLING",
    "MERGES",
    "PLACEMENTS",
    "SHORTCUTS",
    "StochasticDepth",
    "UNIT_KINDS",
    "UnitSpec",
    "activation_layer",
    "context_module",
    "conv2d",
    "dense_block",
    "dense_layer",
    "known_activations",
    "residual_unit",
    "resolve_activation",
    "transition_layer",
]
