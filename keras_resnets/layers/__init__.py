"""Building blocks: residual units, shortcuts, activations and branch regularisers (Keras only)."""
from keras_resnets.layers.activations import activation_layer, known_activations, resolve_activation
from keras_resnets.layers.regularization import StochasticDepth
from keras_resnets.layers.shortcuts import DOWNSAMPLING, SHORTCUTS, ChannelZeroPad
from keras_resnets.layers.units import MERGES, PLACEMENTS, UNIT_KINDS, UnitSpec, conv2d, residual_unit

__all__ = [
    "ChannelZeroPad", "DOWNSAMPLING", "MERGES", "PLACEMENTS", "SHORTCUTS", "StochasticDepth", "UNIT_KINDS",
    "UnitSpec", "activation_layer", "conv2d", "known_activations", "resolve_activation", "residual_unit",
]
