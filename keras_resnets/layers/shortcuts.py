"""Shortcut connections of the residual unit.

*Deep Residual Learning* (He et al., 2016a) downsampling options:
    A  parameter-free: subsample spatially, zero-pad the new channels (:class:`ChannelZeroPad`);
    B  1×1 projection only where the shape changes, identity elsewhere;
    C  1×1 projections on every unit.
*Identity Mappings* (He et al., 2016b, Fig. 2) shortcut types, applied on top of the above:
    identity, constant_scaling, exclusive_gating, shortcut_only_gating, conv (1×1 conv on every
    shortcut, i.e. option C) and dropout.
"""
from __future__ import annotations

import keras
from keras import layers

SHORTCUTS = ("identity", "constant_scaling", "exclusive_gating", "shortcut_only_gating", "conv", "dropout")
DOWNSAMPLING = ("A", "B", "C")


@keras.saving.register_keras_serializable(package="keras_resnets")
class ChannelZeroPad(layers.Layer):
    """Append zero-valued channels: the parameter-free shortcut of option A.

    Args:
        pad: number of zero channels to append after the existing ones.
    """

    def __init__(self, pad: int, **kwargs):
        super().__init__(**kwargs)
        if int(pad) < 0:
            raise ValueError(f"ChannelZeroPad pad must be >= 0, got {pad!r}")
        self.pad = int(pad)

    def call(self, inputs):
        return keras.ops.pad(inputs, [[0, 0], [0, 0], [0, 0], [0, self.pad]])

    def compute_output_shape(self, input_shape):
        channels = None if input_shape[-1] is None else input_shape[-1] + self.pad
        return (*input_shape[:-1], channels)

    def get_config(self):
        return {**super().get_config(), "pad": self.pad}


def subsample(x, stride: int, name: str):
    """Keep every ``stride``-th pixel (a 1×1 max-pool with stride: no parameters, exact)."""
    return layers.MaxPooling2D(pool_size=1, strides=stride, name=name)(x)


def zero_pad_shortcut(x, out_channels: int, stride: int, name: str):
    """Option A: subsample by ``stride`` and zero-pad channels up to ``out_channels``."""
    if stride > 1:
        x = subsample(x, stride, name + "_subsample")
    return ChannelZeroPad(out_channels - x.shape[-1], name=name + "_zeropad")(x)


def gate(x, out_channels: int, stride: int, bias: float, name: str):
    """The gate g(x) = sigmoid(1×1 conv(x) + b) of the gating shortcuts, with ``b`` initialised to ``bias``.

    A negative bias starts the gate near 0, so ``1 - g`` keeps the shortcut close to identity.
    """
    return layers.Conv2D(
        out_channels,
        1,
        strides=stride,
        use_bias=True,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(bias),
        name=name + "_gate",
    )(x)


def one_minus(x, name: str):
    """1 - x, as a standard (serializable, TFLite-friendly) Rescaling layer."""
    return layers.Rescaling(scale=-1.0, offset=1.0, name=name)(x)
