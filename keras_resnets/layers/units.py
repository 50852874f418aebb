"""The residual unit, in every form the two ResNet papers and the CIFAR-10 study describe.

One generic function, :func:`residual_unit`, builds all of them; a :class:`UnitSpec` carries the
choices shared by every unit of a network:

* ``kind``: ``basic`` (3×3, 3×3), ``bottleneck`` (1×1 reduce, 3×3, 1×1 expand ×``expansion``) or
  ``inverted_bottleneck`` (1×1 expand ×``expansion``, 3×3, 1×1 reduce: the study's "reverse" bottleneck).
* ``placement`` — where BN and the activation sit (*Identity Mappings*, Fig. 4):

  ================== ============================================== ==================
  placement          branch                                          after addition
  ================== ============================================== ==================
  original           conv-BN-act … conv-BN                           act
  bn_after_addition  conv-BN-act … conv                              BN, act
  relu_before_addition conv-BN-act … conv-BN-act  (= act(F(x)) + x)  —
  relu_only_preact   act-conv-BN … act-conv-BN                       —
  full_preact        BN-act-conv … BN-act-conv                       —
  ================== ============================================== ==================

* ``shortcut`` (Fig. 2) and ``downsample`` (options A/B/C), see :mod:`keras_resnets.layers.shortcuts`.
* ``merge``: ``add`` (F(x) + x) or ``add_squared_shortcut`` (act(F(x) + x²), the study's variant).
* ``plain=True`` drops the shortcut altogether (the plain nets of the degradation experiment).

"act" is whatever ``activation`` names (the papers' ReLU by default).
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers

from keras_resnets.layers.activations import activation_layer, resolve_activation
from keras_resnets.layers.regularization import StochasticDepth
from keras_resnets.layers.shortcuts import DOWNSAMPLING, SHORTCUTS, gate, one_minus, subsample, zero_pad_shortcut

UNIT_KINDS = ("basic", "bottleneck", "inverted_bottleneck")
PLACEMENTS = ("original", "bn_after_addition", "relu_before_addition", "relu_only_preact", "full_preact")
PREACT_PLACEMENTS = ("relu_only_preact", "full_preact")
MERGES = ("add", "add_squared_shortcut")
STRIDE_POSITIONS = ("1x1", "3x3")

def kernel_initializer():
    """He et al.'s initialisation: N(0, 2 / (k·k·out_channels)) ("MSRA", fan-out)."""
    return keras.initializers.VarianceScaling(scale=2.0, mode="fan_out", distribution="untruncated_normal")


def _check_choice(what: str, value, allowed) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(repr, allowed))}")


@dataclasses.dataclass(frozen=True)
class UnitSpec:
    """Choices shared by every residual unit of a network (validated on construction).

    Args:
        kind: "basic", "bottleneck" or "inverted_bottleneck".
        placement: one of :data:`PLACEMENTS` (where BN and activation sit).
        shortcut: one of :data:`~keras_resnets.layers.shortcuts.SHORTCUTS`.
        downsample: "A", "B" or "C" (what the shortcut does where the shape changes).
        activation: activation name or callable, used wherever the unit activates.
        stride_position: "1x1" (stride on the first 1×1 conv of a bottleneck, the original layout
            as in keras.applications) or "3x3" (stride on the 3×3 conv, "ResNet v1.5").
        merge: "add" or "add_squared_shortcut".
        expansion: channel factor of the bottleneck's expanding conv (4 in the papers).
        shortcut_scale: λ of the constant-scaling shortcut (0.5 in the paper).
        scale_both: constant scaling multiplies the residual branch by λ as well.
        gate_bias: initial bias of the gates' 1×1 conv (negative: start close to identity).
        shortcut_dropout: drop rate of the dropout shortcut (0.5 in the paper).
        zero_init_residual: zero-initialise the last BN γ of each branch (or the last conv kernel
            where the branch ends in a conv), so every unit starts as the identity.
        plain: no shortcut at all (plain network).
        bn_epsilon, bn_momentum: BatchNormalization settings.
    """

    kind: str = "basic"
    placement: str = "original"
    shortcut: str = "identity"
    downsample: str = "B"
    activation: object = "relu"
    stride_position: str = "1x1"
    merge: str = "add"
    expansion: int = 4
    shortcut_scale: float = 0.5
    scale_both: bool = False
    gate_bias: float = -6.0
    shortcut_dropout: float = 0.5
    zero_init_residual: bool = False
    plain: bool = False
    bn_epsilon: float = 1.001e-5
    bn_momentum: float = 0.9

    def __post_init__(self):
        _check_choice("unit", self.kind, UNIT_KINDS)
        _check_choice("placement", self.placement, PLACEMENTS)
        _check_choice("shortcut", self.shortcut, SHORTCUTS)
        _check_choice("downsample option", self.downsample, DOWNSAMPLING)
        _check_choice("stride_position", self.stride_position, STRIDE_POSITIONS)
        _check_choice("merge", self.merge, MERGES)
        object.__setattr__(self, "activation", resolve_activation(self.activation))
        if int(self.expansion) < 1:
            raise ValueError(f"expansion must be a positive integer, got {self.expansion!r}")
        if not 0.0 <= float(self.shortcut_dropout) < 1.0:
            raise ValueError(f"shortcut_dropout must be in [0, 1), got {self.shortcut_dropout!r}")

    @property
    def preact(self) -> bool:
        return self.placement in PREACT_PLACEMENTS

    def out_channels(self, filters: int) -> int:
        """Channels a unit of ``filters`` base width outputs."""
        return filters * self.expansion if self.kind == "bottleneck" else filters

    def bn(self, name: str, zero_gamma: bool = False, moving_variance: float = 1.0):
        """BatchNormalization; ``moving_variance``: initial moving variance (see :func:`residual_unit`)."""
        return layers.BatchNormalization(
            epsilon=self.bn_epsilon,
            momentum=self.bn_momentum,
            gamma_initializer="zeros" if zero_gamma else "ones",
            moving_variance_initializer="ones" if moving_variance == 1.0 else keras.initializers.Constant(moving_variance),
            name=name,
        )

    def act(self, name: str):
        return activation_layer(self.activation, name=name)


def conv2d(x, filters: int, kernel_size: int, stride: int = 1, dilation: int = 1, name: str = "conv",
           use_bias: bool = False, zero_init: bool = False):
    """Convolution with explicit symmetric padding where it strides (as Torch and keras.applications do).

    "same" padding in TensorFlow pads asymmetrically for strided convolutions; padding explicitly keeps
    weights interchangeable with the reference implementations and outputs identical across backends.
    """
    padding = "same"
    if stride > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(dilation * (kernel_size - 1) // 2, name=name + "_pad")(x)
        padding = "valid"
    return layers.Conv2D(
        filters,
        kernel_size,
        strides=stride,
        dilation_rate=dilation,
        padding=padding,
        use_bias=use_bias,
        kernel_initializer="zeros" if zero_init else kernel_initializer(),
        name=name,
    )(x)


def _branch_convs(spec: UnitSpec, filters: int, stride: int):
    """(filters, kernel, stride) of each conv of the residual branch."""
    if spec.kind == "basic":
        return [(filters, 3, stride), (filters, 3, 1)]
    s1, s3 = (stride, 1) if spec.stride_position == "1x1" else (1, stride)
    if spec.kind == "bottleneck":
        return [(filters, 1, s1), (filters, 3, s3), (filters * spec.expansion, 1, 1)]
    wide = filters * spec.expansion  # inverted: expand, 3×3 at the wide width, reduce
    return [(wide, 1, s1), (wide, 3, s3), (filters, 1, 1)]


def residual_unit(x, filters: int, spec: UnitSpec, *, stride: int = 1, dilation: int = 1,
                  first_dilation: int | None = None, drop_rate: float = 0.0, input_variance: float = 1.0,
                  name: str = "unit"):
    """Build one residual (or plain) unit on tensor ``x``.

    Args:
        x: input tensor (NHWC).
        filters: base width (the bottleneck width for bottleneck units, the output width otherwise).
        spec: the network-wide :class:`UnitSpec`.
        stride: spatial stride of the unit (1 or 2).
        dilation: dilation of the unit's 3×3 convolutions (dilated ResNets).
        first_dilation: dilation of the first 3×3 conv if it differs (first unit of a dilated stage).
        drop_rate: stochastic-depth drop probability of this unit's branch.
        input_variance: the variance ``x`` has at initialisation, in units of the stem's output
            variance (a residual stream grows by about one per unit: ``k`` for the k-th unit). It is
            the initial moving variance of the BNs that read ``x`` (the first BN of the branch, the
            projection's BN, or the pre-activation BN), so that inference at initialisation
            normalises as training does. With the default 1, inference-mode BNs at initialisation
            are identities, the stream doubles its variance every unit, and the 1202- and
            1001-layer nets overflow float32. Training never reads it (the moving statistics are
            overwritten by their running average within a few hundred steps).
        name: prefix of every layer name (``stage{s}_unit{u}`` in the builders).

    Returns:
        The unit's output tensor. Its last layer is named ``{name}_out``.
    """
    in_channels = x.shape[-1]
    out_channels = spec.out_channels(filters)
    place = spec.placement

    # Pre-activation placements activate once, before the split; projection shortcuts read this
    # pre-activated tensor too (He et al. 2016b; keras.applications ResNetV2 does the same).
    preact = x
    if place == "full_preact":
        preact = spec.act(name + "_preact_act")(spec.bn(name + "_preact_bn", moving_variance=input_variance)(x))
    elif place == "relu_only_preact":
        preact = spec.act(name + "_preact_act")(x)
    branch = preact

    convs = _branch_convs(spec, filters, stride)
    n = len(convs)
    first_3x3 = next(i for i, (_, k, _) in enumerate(convs, start=1) if k == 3)
    for i, (f, k, s) in enumerate(convs, start=1):
        last = i == n
        d = 1 if k == 1 else (first_dilation or dilation) if i == first_3x3 else dilation
        if place == "relu_only_preact" and i > 1:
            branch = spec.act(f"{name}_act{i}")(branch)
        elif place == "full_preact" and i > 1:
            branch = spec.act(f"{name}_act{i}")(spec.bn(f"{name}_bn{i - 1}")(branch))
        zero_conv = spec.zero_init_residual and last and place in ("full_preact", "bn_after_addition")
        branch = conv2d(branch, f, k, s, d, name=f"{name}_conv{i}", zero_init=zero_conv)
        if place in ("original", "relu_before_addition", "relu_only_preact") or (place == "bn_after_addition" and not last):
            reads_input = i == 1 and place != "full_preact"
            branch = spec.bn(f"{name}_bn{i}", zero_gamma=spec.zero_init_residual and last,
                             moving_variance=input_variance if reads_input else 1.0)(branch)
        if place in ("original", "bn_after_addition") and not last:
            branch = spec.act(f"{name}_act{i}")(branch)
        if place == "relu_before_addition":
            branch = spec.act(f"{name}_act{i}")(branch)

    if spec.plain:
        return _after_addition(branch, spec, name)

    shortcut = _shortcut(x, preact, spec, in_channels, out_channels, stride, name, input_variance)
    if spec.shortcut in ("exclusive_gating", "shortcut_only_gating"):
        g = gate(preact, out_channels, stride, spec.gate_bias, name)
        if spec.shortcut == "exclusive_gating":
            branch = layers.Multiply(name=name + "_branch_gated")([branch, g])
        shortcut = layers.Multiply(name=name + "_shortcut_gated")([shortcut, one_minus(g, name + "_one_minus_gate")])
    elif spec.shortcut == "constant_scaling":
        shortcut = layers.Rescaling(spec.shortcut_scale, name=name + "_shortcut_scale")(shortcut)
        if spec.scale_both:
            branch = layers.Rescaling(spec.shortcut_scale, name=name + "_branch_scale")(branch)
    elif spec.shortcut == "dropout":
        shortcut = layers.Dropout(spec.shortcut_dropout, name=name + "_shortcut_dropout")(shortcut)

    if drop_rate > 0.0:
        branch = StochasticDepth(drop_rate, name=name + "_drop_path")(branch)
    if spec.merge == "add_squared_shortcut":
        shortcut = layers.Multiply(name=name + "_shortcut_squared")([shortcut, shortcut])
    out = layers.Add(name=name + "_add")([shortcut, branch])
    return _after_addition(out, spec, name)


def _after_addition(out, spec: UnitSpec, name: str):
    place = spec.placement
    if place == "bn_after_addition":
        out = spec.bn(name + "_post_bn")(out)
    if place in ("original", "bn_after_addition") or spec.merge == "add_squared_shortcut":
        return spec.act(name + "_out")(out)
    # Nothing after the addition: name the output with an identity activation so every unit
    # has a `{name}_out` layer (used for feature taps and gradient-flow analysis).
    return layers.Activation("linear", name=name + "_out")(out)


def _shortcut(x, preact, spec: UnitSpec, in_channels: int, out_channels: int, stride: int, name: str,
              input_variance: float = 1.0):
    """The shortcut path before any Fig. 2 modifier (gating, scaling, dropout).

    ``x`` is the unit input, ``preact`` its pre-activation (the same tensor for post-activation units).
    """
    project_all = spec.downsample == "C" or spec.shortcut == "conv"
    if in_channels != out_channels or project_all:
        if spec.downsample == "A" and not project_all and out_channels > in_channels:
            return zero_pad_shortcut(x, out_channels, stride, name + "_shortcut")
        s = layers.Conv2D(out_channels, 1, strides=stride, use_bias=False, kernel_initializer=kernel_initializer(),
                          name=name + "_shortcut_conv")(preact)
        return s if spec.preact else spec.bn(name + "_shortcut_bn", moving_variance=input_variance)(s)
    if stride > 1:
        return subsample(x, stride, name + "_shortcut_subsample")
    return x
