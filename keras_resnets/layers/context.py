"""The context module of Yu & Koltun (ICLR 2016): dilated 3×3 convolutions that aggregate context.

Layers of 3×3 convolutions with dilations 1, 1, 2, 4, 8, 16, 1 and a final 1×1 convolution, an
activation after each but the last. Receptive field after each 3×3 layer: 3, 5, 9, 17, 33, 65, 67.

* ``basic``: every layer has C channels (C = the module's input channels, the number of classes).
* ``large``: widths 2C, 2C, 4C, 8C, 16C, 32C, 32C, then C (Yu & Koltun, Table 1).

Identity initialisation (their eq. 2): the centre tap of layer ``i`` maps input channel ``a`` to
output channel ``b`` with weight ``C / c_{i+1}`` when ``⌊a·C/c_i⌋ = ⌊b·C/c_{i+1}⌋`` and 0 elsewhere;
biases are 0. The basic module then copies every channel through every layer, and the large one
splits channel ``c`` evenly over its group of ``c_{i+1}/C`` channels and sums the group back in
the last layer: the module computes the identity at initialisation. The activations sit between
layers, so the identity holds exactly for inputs the activation leaves unchanged (non-negative
inputs with ReLU). The large module adds small noise to the off-identity weights (the paper's ε)
so the channels of a group can learn different functions.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import layers

from keras_resnets.layers.activations import activation_layer

CONTEXT_VARIANTS = ("basic", "large")
BASIC_CONTEXT_LAYERS = 8  # seven dilated 3×3 layers and the 1×1 output layer
_LARGE_MAX_WIDTH = 32  # the large module widens up to 32·C


@keras.saving.register_keras_serializable(package="keras_resnets")
class ContextIdentity(keras.initializers.Initializer):
    """Yu & Koltun's identity initialiser for a conv kernel ``(kh, kw, c_in, c_out)`` (eq. 2).

    Args:
        base_channels: C, the module's input and output channels; ``c_in`` and ``c_out`` must be
            multiples of it.
        noise_stddev: standard deviation of the Gaussian noise on the weights off the identity
            pattern (0 for an exact identity).
        seed: seed of that noise.
    """

    def __init__(self, base_channels: int, noise_stddev: float = 0.0, seed: int = 0):
        if isinstance(base_channels, bool) or not isinstance(base_channels, int) or base_channels < 1:
            raise ValueError(f"base_channels must be a positive integer, got {base_channels!r}")
        if noise_stddev < 0:
            raise ValueError(f"noise_stddev must be >= 0, got {noise_stddev!r}")
        self.base_channels = base_channels
        self.noise_stddev = float(noise_stddev)
        self.seed = int(seed)

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        base = self.base_channels
        if c_in % base or c_out % base:
            raise ValueError(f"ContextIdentity needs channel counts that are multiples of base_channels={base}; "
                             f"got a kernel of shape {tuple(shape)}")
        same_group = (np.arange(c_in)[:, None] * base // c_in) == (np.arange(c_out)[None, :] * base // c_out)
        kernel = np.zeros(shape, dtype="float32")
        if self.noise_stddev:
            kernel = np.random.default_rng(self.seed).normal(0.0, self.noise_stddev, shape).astype("float32")
        centre = kernel[kh // 2, kw // 2]
        centre[same_group] = base / c_out
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {"base_channels": self.base_channels, "noise_stddev": self.noise_stddev, "seed": self.seed}


def context_dilations(context_layers: int = BASIC_CONTEXT_LAYERS) -> tuple:
    """Dilations of the 3×3 layers of a module with ``context_layers`` layers (1×1 output included).

    8 layers give (1, 1, 2, 4, 8, 16, 1), the paper's module (used for Pascal VOC and CamVid); each
    further layer doubles the largest dilation, e.g. 10 layers (1, 1, 2, 4, 8, 16, 32, 64, 1) for
    Cityscapes-size inputs.
    """
    if isinstance(context_layers, bool) or not isinstance(context_layers, int) or context_layers < 4:
        raise ValueError(f"context_layers must be an integer >= 4 (8 in the paper, 10 for Cityscapes), "
                         f"got {context_layers!r}")
    growing = context_layers - 4  # 3×3 layers between the first two (dilation 1) and the last (dilation 1)
    return (1, 1) + tuple(2 ** i for i in range(1, growing + 1)) + (1,)


def context_widths(variant: str, channels: int, num_dilated: int) -> tuple:
    """Output channels of the ``num_dilated`` 3×3 layers, then of the 1×1 layer."""
    if variant not in CONTEXT_VARIANTS:
        raise ValueError(f"unknown context variant {variant!r}; allowed: {', '.join(map(repr, CONTEXT_VARIANTS))}")
    if variant == "basic":
        return (channels,) * (num_dilated + 1)
    factors = [min(2 ** max(i, 1), _LARGE_MAX_WIDTH) for i in range(num_dilated - 1)]
    factors.append(factors[-1])  # the last 3×3 layer keeps the width (32C, 32C)
    return tuple(channels * f for f in factors) + (channels,)


def context_module(x, variant: str = "basic", *, context_layers: int = BASIC_CONTEXT_LAYERS, dilations=None,
                   batch_norm: bool = False, activation="relu", identity_noise: float | None = None,
                   name: str = "context"):
    """Apply the context module to ``x`` (NHWC, C channels); the output has C channels too.

    Args:
        x: input tensor, typically the front-end's class scores.
        variant: "basic" (C channels throughout) or "large" (widening to 32C).
        context_layers: total layers including the 1×1 output layer (8 in the paper; 10 for
            Cityscapes-size images). Ignored when ``dilations`` is given.
        dilations: explicit dilations of the 3×3 layers, overriding ``context_layers``.
        batch_norm: conv (no bias)-BN-act instead of conv (with bias)-act, as in the seed's block. At
            initialisation each BN then only divides by sqrt(1 + epsilon) in inference.
        activation: activation after every layer but the last (ReLU in the paper).
        identity_noise: standard deviation of the noise on the off-identity weights; ``None``
            gives 0 for the basic module and 1e-3 for the large one.
        name: layer-name prefix; layers are ``{name}_conv{i}`` (and ``_bn{i}``, ``_act{i}``).

    Returns:
        The module's output tensor (C channels, same spatial size).

    Raises:
        ValueError: unknown variant, bad ``context_layers``, or a dilation that is not a positive integer.
    """
    if dilations is None:
        dilations = context_dilations(context_layers)
    dilations = tuple(dilations)
    if not dilations or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in dilations):
        raise ValueError(f"dilations must be positive integers such as (1, 1, 2, 4, 8, 16, 1), got {dilations!r}")
    channels = x.shape[-1]
    widths = context_widths(variant, channels, len(dilations))
    if identity_noise is None:
        identity_noise = 0.0 if variant == "basic" else 1e-3
    kernels = [(3, d) for d in dilations] + [(1, 1)]
    for i, ((size, dilation), width) in enumerate(zip(kernels, widths), start=1):
        last = i == len(kernels)
        x = layers.Conv2D(
            width, size, padding="same", dilation_rate=dilation, use_bias=not batch_norm or last,
            kernel_initializer=ContextIdentity(channels, identity_noise, seed=i), bias_initializer="zeros",
            name=f"{name}_conv{i}",
        )(x)
        if last:
            break
        if batch_norm:
            x = layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = activation_layer(activation, name=f"{name}_act{i}")(x)
    return x
