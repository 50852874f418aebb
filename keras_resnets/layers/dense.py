"""DenseNet building blocks (Huang et al., CVPR 2017): dense layers, dense blocks and transitions.

Every layer of a dense block receives the concatenation of all earlier feature maps of the block and
adds ``growth_rate`` channels to it. The composite function is pre-activation BN-act-conv:

* plain layer: BN-act-3×3 conv(k);
* bottleneck layer (DenseNet-B): BN-act-1×1 conv(4k)-BN-act-3×3 conv(k).

A transition between blocks is BN-act-1×1 conv(⌊θ·m⌋)-2×2 average pool, ``θ`` the compression
(DenseNet-C when θ < 1). Layer names follow ``block{b}_layer{l}_...`` and ``transition{b}_...``.
"""
from __future__ import annotations

import keras
from keras import layers

from keras_resnets.layers.activations import activation_layer


def dense_kernel_initializer():
    """He normal initialisation (fan-in), as the DenseNet reference implementation uses."""
    return keras.initializers.HeNormal()


def _bn(name: str, epsilon: float):
    return layers.BatchNormalization(epsilon=epsilon, name=name)


def dense_layer(x, growth_rate: int, *, bottleneck: bool = True, bottleneck_width: int = 4, activation="relu",
                dropout_rate: float = 0.0, bn_epsilon: float = 1.001e-5, name: str = "dense_layer"):
    """One composite function H of a dense block, concatenated to its input.

    Args:
        x: input tensor (NHWC): the concatenation of every earlier map of the block.
        growth_rate: channels the layer adds (k).
        bottleneck: put a 1×1 conv to ``bottleneck_width·k`` channels before the 3×3 (DenseNet-B).
        bottleneck_width: channel factor of the bottleneck (4 in the paper).
        activation: activation name or callable.
        dropout_rate: dropout after each convolution (0.2 in the paper's runs without augmentation).
        bn_epsilon: BatchNormalization epsilon.
        name: layer-name prefix.

    Returns:
        ``concat([x, H(x)])``, with ``x.shape[-1] + growth_rate`` channels.
    """
    y = x
    if bottleneck:
        y = activation_layer(activation, name=name + "_act1")(_bn(name + "_bn1", bn_epsilon)(y))
        y = layers.Conv2D(bottleneck_width * growth_rate, 1, use_bias=False,
                          kernel_initializer=dense_kernel_initializer(), name=name + "_conv1")(y)
        if dropout_rate:
            y = layers.Dropout(dropout_rate, name=name + "_drop1")(y)
    y = activation_layer(activation, name=name + "_act2")(_bn(name + "_bn2", bn_epsilon)(y))
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False,
                      kernel_initializer=dense_kernel_initializer(), name=name + "_conv2")(y)
    if dropout_rate:
        y = layers.Dropout(dropout_rate, name=name + "_drop2")(y)
    return layers.Concatenate(name=name + "_concat")([x, y])


def dense_block(x, num_layers: int, growth_rate: int, *, name: str = "block", **layer_kwargs):
    """``num_layers`` dense layers; the output has ``in_channels + num_layers·growth_rate`` channels.

    Args:
        x: input tensor.
        num_layers: layers in the block.
        growth_rate: channels each layer adds (k).
        name: prefix; layer ``l`` is named ``{name}_layer{l}``.
        **layer_kwargs: keywords of :func:`dense_layer` (bottleneck, activation, dropout_rate, ...).
    """
    for index in range(1, num_layers + 1):
        x = dense_layer(x, growth_rate, name=f"{name}_layer{index}", **layer_kwargs)
    return x


def transition_channels(channels: int, compression: float) -> int:
    """Output channels of a transition layer: ⌊θ·m⌋ (Huang et al., Sec. 3)."""
    return int(channels * compression)


def transition_layer(x, compression: float = 0.5, *, activation="relu", dropout_rate: float = 0.0,
                     bn_epsilon: float = 1.001e-5, name: str = "transition"):
    """BN-act-1×1 conv(⌊θ·m⌋)-2×2 average pool with stride 2.

    Args:
        x: input tensor with ``m`` channels.
        compression: θ in (0, 1]; 1 keeps the channel count (DenseNet without C).
        activation: activation name or callable.
        dropout_rate: dropout after the convolution.
        bn_epsilon: BatchNormalization epsilon.
        name: layer-name prefix.
    """
    y = activation_layer(activation, name=name + "_act")(_bn(name + "_bn", bn_epsilon)(x))
    y = layers.Conv2D(transition_channels(x.shape[-1], compression), 1, use_bias=False,
                      kernel_initializer=dense_kernel_initializer(), name=name + "_conv")(y)
    if dropout_rate:
        y = layers.Dropout(dropout_rate, name=name + "_drop")(y)
    return layers.AveragePooling2D(2, strides=2, name=name + "_pool")(y)
