"""Dilated segmentation networks: Yu & Koltun's front-end and context module, dilated ResNets.

:func:`SegmentationNet` = backbone at 1/``output_stride`` resolution, 1×1 classifier to per-class
scores, optional context module, bilinear upsampling to the input size: per-pixel logits.

* ``backbone="vgg16"``: the front-end of Yu & Koltun (2016), VGG-16 with the pooling layers after
  the requested stride removed and the convolutions after them dilated (×2 after pool4, ×4 after
  pool5; fc6 becomes a 7×7 convolution, fc7 a 1×1 one). At ``output_stride=8`` that is their
  front-end: pool4 and pool5 removed, conv5 dilated by 2, fc6 by 4.
* any registered model whose builder takes ``output_stride`` and ``features_only`` (every ResNet):
  a dilated residual network whose last stages trade strides for dilations.

The output is upsampled by ``UpSampling2D(interpolation="bilinear")`` with a static factor, so the
model has static shapes (TFLite-friendly) and its height and width must be multiples of the
backbone's stride.
"""
from __future__ import annotations

import keras
from keras import layers

from keras_resnets.layers.activations import activation_layer, resolve_activation
from keras_resnets.layers.context import BASIC_CONTEXT_LAYERS, CONTEXT_VARIANTS, context_module
from keras_resnets.models.base import classification_head, load_weights, model_input
from keras_resnets.models.factory import create_model
from keras_resnets.models.registry import get_entry

OUTPUT_STRIDES = (8, 16, 32)
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (width, 3×3 convs) per block
DEFAULT_INPUT_SHAPE = (512, 512, 3)


def dilated_vgg16(x, *, output_stride: int = 8, fc_width: int = 4096, dropout_rate: float = 0.5,
                  activation="relu"):
    """VGG-16 (conv1_1 … fc7) on ``x`` at 1/``output_stride`` resolution, Yu & Koltun's front-end at 8.

    Pooling layers beyond the requested stride are removed and every convolution after a removed
    pooling layer is dilated by the stride it lost (2 after pool4, 4 after pool5); fc6 is a 7×7
    convolution and fc7 a 1×1 convolution, both followed by the activation and dropout.

    Args:
        x: input tensor (NHWC).
        output_stride: 8, 16 or 32.
        fc_width: channels of fc6 and fc7 (4096 in VGG-16).
        dropout_rate: dropout after fc6 and fc7 (0.5 in VGG-16).
        activation: activation after every convolution.

    Returns:
        The fc7 feature map.
    """
    stride, dilation = 1, 1
    for b, (width, convs) in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(width, 3, padding="same", dilation_rate=dilation, name=f"block{b}_conv{c}")(x)
            x = activation_layer(activation, name=f"block{b}_act{c}")(x)
        if stride * 2 <= output_stride:
            x = layers.MaxPooling2D(2, strides=2, name=f"block{b}_pool")(x)
            stride *= 2
        else:
            dilation *= 2
    for i, size in ((6, 7), (7, 1)):
        x = layers.Conv2D(fc_width, size, padding="same", dilation_rate=dilation if size > 1 else 1,
                          name=f"fc{i}")(x)
        x = activation_layer(activation, name=f"fc{i}_act")(x)
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name=f"fc{i}_dropout")(x)
    return x


def _backbone_features(inputs, backbone: str, output_stride: int, multi_grid, fc_width: int, activation,
                       backbone_kwargs: dict):
    if backbone == "vgg16":
        if multi_grid is not None:
            raise ValueError("multi_grid applies to residual backbones, not to backbone='vgg16'")
        return dilated_vgg16(inputs, output_stride=output_stride, fc_width=fc_width, activation=activation,
                             **backbone_kwargs)
    entry = get_entry(backbone)
    needed = {"output_stride", "features_only", "input_tensor"}
    if not needed <= set(entry.keywords()):
        raise ValueError(f"backbone {backbone!r} cannot be dilated (its builder takes no output_stride); "
                         f"allowed: 'vgg16' or a ResNet from the registry such as 'resnet50'")
    extra = {"multi_grid": multi_grid} if multi_grid is not None else {}
    model = create_model(backbone, input_tensor=inputs, features_only=True, output_stride=output_stride,
                         activation=activation, **extra, **backbone_kwargs)
    return list(model.output.values())[-1]


def SegmentationNet(
    backbone: str = "resnet50",
    *,
    output_stride: int = 8,
    multi_grid=None,
    context: str | None = "basic",
    context_layers: int = BASIC_CONTEXT_LAYERS,
    context_batch_norm: bool = False,
    fc_width: int = 4096,
    activation="relu",
    backbone_kwargs: dict | None = None,
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 21,
    classifier_activation=None,
    name: str = "segmentation_net",
):
    """A dilated backbone, class scores, an optional context module and bilinear upsampling.

    Args:
        backbone: "vgg16" (Yu & Koltun's front-end) or the registry name of a ResNet ("resnet50",
            "resnet101_v2", "cifar_resnet20", ...).
        output_stride: 8, 16 or 32, the resolution of the backbone's features (1/8 in the paper).
        multi_grid: dilation multipliers of the last stage of a ResNet backbone, e.g. (1, 2, 4).
        context: "basic", "large" or None (no context module: the front-end alone).
        context_layers: layers of the context module (8 in the paper, 10 for Cityscapes-size images).
        context_batch_norm: the context module's BN variant.
        fc_width: channels of the VGG front-end's fc6/fc7 (4096 in the paper).
        activation: activation of the backbone and the context module.
        backbone_kwargs: further keywords of the backbone (e.g. ``{"stage_widths": (16, 32, 64, 128)}``
            for a ResNet, ``{"dropout_rate": 0.0}`` for VGG-16).
        include_top: the per-pixel classifier and upsampling; ``False`` returns the backbone's
            feature map (pooled by ``pooling``).
        weights: None or a ``.weights.h5``/``.keras`` file of this architecture.
        input_tensor, input_shape: as in keras.applications; height and width must be known and be
            multiples of ``output_stride`` (default 512×512×3).
        pooling: None, "avg" or "max", used only with ``include_top=False``.
        classes: number of classes (21 for Pascal VOC).
        classifier_activation: activation of the output; None (default) gives logits.
        name: model name.

    Returns:
        A functional ``keras.Model`` mapping ``(batch, H, W, channels)`` images to
        ``(batch, H, W, classes)`` per-pixel scores.

    Raises:
        ValueError: bad output stride, context variant, backbone or input size, naming the value and
            what is allowed.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of 8, 16, 32; got {output_stride!r}")
    if context is not None and context not in CONTEXT_VARIANTS:
        raise ValueError(f"unknown context {context!r}; allowed: 'basic', 'large' or None")
    if isinstance(fc_width, bool) or not isinstance(fc_width, int) or fc_width < 1:
        raise ValueError(f"fc_width must be a positive integer, got {fc_width!r}")
    activation = resolve_activation(activation)
    inputs, x = model_input(input_tensor, input_shape, default_shape=DEFAULT_INPUT_SHAPE, min_size=output_stride)
    height, width = x.shape[1:3]
    for size, what in ((height, "height"), (width, "width")):
        if size is None or size % output_stride:
            raise ValueError(
                f"input {what} {size} cannot be kept at output_stride={output_stride}; segmentation models need "
                f"a known height and width that are multiples of {output_stride} (e.g. {8 * output_stride})"
            )

    features = _backbone_features(x, backbone, output_stride, multi_grid, fc_width, activation,
                                  dict(backbone_kwargs or {}))
    if not include_top:
        outputs = classification_head(features, include_top=False, pooling=pooling, classes=classes,
                                      classifier_activation=None)
        return load_weights(keras.Model(inputs, outputs, name=name), weights)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 1:
        raise ValueError(f"classes must be a positive integer, got {classes!r}")

    scores = layers.Conv2D(classes, 1, name="scores")(features)
    if context is not None:
        scores = context_module(scores, context, context_layers=context_layers, batch_norm=context_batch_norm,
                                activation=activation, name="context")
    stride_h, stride_w = height // scores.shape[1], width // scores.shape[2]
    logits = layers.UpSampling2D((stride_h, stride_w), interpolation="bilinear", name="upsample")(scores)
    if classifier_activation is not None:
        logits = layers.Activation(classifier_activation, name="predictions")(logits)
    return load_weights(keras.Model(inputs, logits, name=name), weights)


# The smallest input that every output stride accepts (any multiple of the output stride works).
SegmentationNet.min_input_size = max(OUTPUT_STRIDES)
