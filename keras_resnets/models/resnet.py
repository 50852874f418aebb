"""ResNet v1/v2, their ablations and plain counterparts: one generic builder.

:func:`ResNet` builds any stage layout, unit, shortcut and activation placement; :func:`CifarResNet`
derives the stage depths of the papers' CIFAR networks from their total depth (6n+2 or 9n+2).
The named models (resnet50, cifar_resnet56, ...) are rows of keras_resnets/models/catalog.py.
"""
from __future__ import annotations

from keras import layers
import keras

from keras_resnets.layers.units import UnitSpec, conv2d, residual_unit
from keras_resnets.models.base import allow_deep_graphs, classification_head, load_weights, model_input

STEMS = ("imagenet", "cifar")
OUTPUT_STRIDES = (8, 16, 32)
DOWNSAMPLE_POSITIONS = ("first", "last")


def ResNet(
    stage_depths=(2, 2, 2, 2),
    stage_widths=(64, 128, 256, 512),
    *,
    unit: str = "basic",
    placement: str = "original",
    shortcut: str = "identity",
    downsample: str = "B",
    stride_position: str = "1x1",
    downsample_position: str = "first",
    merge: str = "add",
    expansion: int = 4,
    activation="relu",
    shortcut_scale: float = 0.5,
    scale_both: bool = False,
    gate_bias: float = -6.0,
    shortcut_dropout: float = 0.5,
    zero_init_residual: bool = False,
    stochastic_depth: float = 0.0,
    plain: bool = False,
    stem: str = "imagenet",
    stem_width: int = 64,
    stem_bias: bool = False,
    output_stride: int | None = None,
    multi_grid=None,
    bn_epsilon: float = 1.001e-5,
    bn_momentum: float = 0.9,
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    features_only: bool = False,
    name: str = "resnet",
):
    """Build a residual network (or its plain counterpart) of any layout.

    Args:
        stage_depths: units per stage, e.g. (3, 4, 6, 3) for ResNet-50.
        stage_widths: base width per stage (bottleneck width for bottleneck units).
        unit, placement, shortcut, downsample, stride_position, merge, expansion, activation,
        shortcut_scale, scale_both, gate_bias, shortcut_dropout, zero_init_residual, plain,
        bn_epsilon, bn_momentum: see :class:`keras_resnets.layers.UnitSpec`.
        downsample_position: stride in the "first" unit of a stage (the papers) or the "last"
            (keras.applications ResNetV2).
        stochastic_depth: drop probability of the last unit's branch; earlier units decay linearly.
        stem: "imagenet" (7×7/2 conv, 3×3/2 max-pool) or "cifar" (3×3 conv).
        stem_width: channels of the stem convolution.
        stem_bias: give the stem convolution a bias (keras.applications ResNetV2 has one).
        output_stride: 8, 16 or 32 — replace the strides of the last stages by dilations so the
            features stay at 1/``output_stride`` resolution (dilated ResNet); None keeps the strides.
        multi_grid: dilation multipliers cycled over the units of the last stage when dilated,
            e.g. (1, 2, 4).
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications. ``weights`` is None or a ``.weights.h5``/``.keras`` file.
        features_only: return a model whose outputs are a dict of multi-scale feature maps
            ``{"stem", "stage1", ..., "stageN"}`` (for segmentation and detection heads).
        name: model name.

    Returns:
        A functional ``keras.Model``.
    """
    depths, widths = _check_stages(stage_depths, stage_widths)
    if stem not in STEMS:
        raise ValueError(f"unknown stem {stem!r}; allowed: {', '.join(map(repr, STEMS))}")
    if downsample_position not in DOWNSAMPLE_POSITIONS:
        raise ValueError(f"unknown downsample_position {downsample_position!r}; allowed: 'first', 'last'")
    if output_stride is not None and output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be None or one of 8, 16, 32; got {output_stride!r}")
    grid = _check_multi_grid(multi_grid)
    if not 0.0 <= float(stochastic_depth) < 1.0:
        raise ValueError(f"stochastic_depth must be in [0, 1), got {stochastic_depth!r}")
    spec = UnitSpec(
        kind=unit, placement=placement, shortcut=shortcut, downsample=downsample, activation=activation,
        stride_position=stride_position, merge=merge, expansion=expansion, shortcut_scale=shortcut_scale,
        scale_both=scale_both, gate_bias=gate_bias, shortcut_dropout=shortcut_dropout,
        zero_init_residual=zero_init_residual, plain=plain, bn_epsilon=bn_epsilon, bn_momentum=bn_momentum,
    )

    stem_stride = 4 if stem == "imagenet" else 1
    native_stride = stem_stride * 2 ** (len(depths) - 1)
    total_stride = min(native_stride, output_stride or native_stride)
    inputs, x = model_input(input_tensor, input_shape,
                            default_shape=(224, 224, 3) if stem == "imagenet" else (32, 32, 3),
                            min_size=total_stride)

    allow_deep_graphs(12 * sum(depths))
    x = _stem(x, stem, stem_width, stem_bias, spec)
    features = {"stem": x}
    current_stride, dilation = stem_stride, 1
    total_units, unit_index = sum(depths), 0
    # Stage s downsamples in its first unit (stages 2..N) or, keras.applications-V2 style, in its
    # last unit (stages 1..N-1).
    stage_strides = [1] + [2] * (len(depths) - 1)
    if downsample_position == "last":
        stage_strides = stage_strides[1:] + [1]
    for s, (depth, width) in enumerate(zip(depths, widths), start=1):
        stage_stride, previous_dilation = stage_strides[s - 1], dilation
        if stage_stride == 2 and output_stride is not None and current_stride * 2 > output_stride:
            dilation, stage_stride = dilation * 2, 1
        current_stride *= stage_stride
        for u in range(1, depth + 1):
            unit_index += 1
            strided = u == (1 if downsample_position == "first" else depth)
            unit_dilation = dilation
            if grid and dilation > 1 and s == len(depths):
                unit_dilation = dilation * grid[(u - 1) % len(grid)]
            x = residual_unit(
                x, width, spec,
                stride=stage_stride if strided else 1,
                dilation=unit_dilation,
                first_dilation=previous_dilation if u == 1 and not grid else None,
                drop_rate=float(stochastic_depth) * unit_index / total_units,
                input_variance=1.0 if plain else float(unit_index),
                name=f"stage{s}_unit{u}",
            )
        features[f"stage{s}"] = x

    if placement == "full_preact":
        x = spec.act("post_act")(spec.bn("post_bn", moving_variance=1.0 if plain else total_units + 1.0)(x))
    elif placement == "relu_only_preact":
        x = spec.act("post_act")(x)
    features[f"stage{len(depths)}"] = x

    outputs = features if features_only else classification_head(
        x, include_top=include_top, pooling=pooling, classes=classes, classifier_activation=classifier_activation)
    model = keras.Model(inputs, outputs, name=name)
    return load_weights(model, weights)


def _stem(x, stem: str, width: int, bias: bool, spec: UnitSpec):
    """Stem convolution; post-activation networks follow it with BN and the activation."""
    if stem == "imagenet":
        x = conv2d(x, width, 7, stride=2, name="stem_conv", use_bias=bias)
    else:
        x = conv2d(x, width, 3, stride=1, name="stem_conv", use_bias=bias)
    if not spec.preact:
        x = spec.act("stem_act")(spec.bn("stem_bn")(x))
    if stem == "imagenet":
        # Zero padding then max-pool, as keras.applications and Torch do (exact port of their weights).
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    return x


def _check_stages(stage_depths, stage_widths):
    depths, widths = tuple(stage_depths), tuple(stage_widths)
    if not depths or any(not isinstance(d, int) or d < 1 for d in depths):
        raise ValueError(f"stage_depths must be positive integers, got {stage_depths!r}")
    if len(widths) != len(depths) or any(not isinstance(w, int) or w < 1 for w in widths):
        raise ValueError(f"stage_widths must be {len(depths)} positive integers (one per stage), got {stage_widths!r}")
    return depths, widths


def _check_multi_grid(multi_grid):
    if multi_grid is None:
        return ()
    if isinstance(multi_grid, (str, bytes)) or not hasattr(multi_grid, "__iter__"):
        raise ValueError(f"multi_grid must be a sequence of positive integers such as (1, 2, 4), got {multi_grid!r}")
    grid = tuple(multi_grid)
    if not grid or any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in grid):
        raise ValueError(f"multi_grid must be positive integers such as (1, 2, 4), got {multi_grid!r}")
    return grid


def cifar_stage_depth(depth: int, unit: str) -> int:
    """Units per stage ``n`` of a 3-stage CIFAR network of total ``depth``.

    Basic units give depth 6n+2, bottleneck (and inverted bottleneck) units 9n+2.
    """
    convs = 2 if unit == "basic" else 3
    per_n = 3 * convs
    if not isinstance(depth, int) or depth < per_n + 2 or (depth - 2) % per_n:
        form = "6n+2 (8, 14, 20, 32, 44, 56, 110, 1202, ...)" if convs == 2 else "9n+2 (11, 20, 29, 164, 1001, ...)"
        raise ValueError(f"CIFAR depth {depth!r} is not of the form {form} for {unit!r} units")
    return (depth - 2) // per_n


def CifarResNet(depth: int = 20, *, unit: str = "basic", stage_widths=(16, 32, 64), stem_width: int = 16,
                downsample: str = "A", input_shape=None, classes: int = 10, name: str = "cifar_resnet", **kwargs):
    """The papers' CIFAR network: a 3×3 stem and three stages of ``n`` units, 6n+2 or 9n+2 layers deep.

    Args:
        depth: total depth; 6n+2 for basic units (20, 32, 44, 56, 110, 1202), 9n+2 for bottlenecks
            (164, 1001).
        unit: "basic", "bottleneck" or "inverted_bottleneck".
        stage_widths: base widths of the three stages (16, 32, 64 in the papers).
        stem_width: channels of the 3×3 stem convolution.
        downsample: "A" (zero-padding, as in *Deep Residual Learning* on CIFAR), "B" or "C".
        input_shape, classes, name: as in :func:`ResNet` (defaults: 32×32×3, 10 classes).
        **kwargs: any other keyword of :func:`ResNet` (placement, shortcut, activation, ...).
    """
    n = cifar_stage_depth(depth, unit)
    return ResNet((n,) * len(stage_widths), stage_widths, unit=unit, stem="cifar", stem_width=stem_width,
                  downsample=downsample, input_shape=input_shape, classes=classes, name=name, **kwargs)


CifarResNet.forwards_to = ResNet
CifarResNet.fixed_keywords = ("stage_depths", "stem")
