"""DenseNet (Huang et al., CVPR 2017): one generic builder, the CIFAR depth rule and the named table.

:func:`DenseNet` builds any layout of dense blocks; growth rate ``k``, compression ``θ`` and the
bottleneck (B) are keywords. :func:`CifarDenseNet` derives the block depth of the paper's CIFAR
networks from their total depth ``L`` (3 blocks of (L-4)/3 plain or (L-4)/6 bottleneck layers).
The keras.applications DenseNet121/169/201 are ported with their weights (``keras_resnets.models.port``).
"""
from __future__ import annotations


import keras
from keras import layers

from keras_resnets.layers.activations import activation_layer, resolve_activation
from keras_resnets.layers.dense import dense_block, dense_kernel_initializer, transition_layer
from keras_resnets.models.base import allow_deep_graphs, classification_head, load_weights, model_input

DENSENET_STEMS = ("imagenet", "cifar")
BN_EPSILON = 1.001e-5


def DenseNet(
    block_depths=(6, 12, 24, 16),
    *,
    growth_rate: int = 32,
    compression: float = 0.5,
    bottleneck: bool = True,
    bottleneck_width: int = 4,
    stem: str = "imagenet",
    stem_width: int | None = None,
    dropout_rate: float = 0.0,
    activation="relu",
    include_top: bool = True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes: int = 1000,
    classifier_activation="softmax",
    features_only: bool = False,
    name: str = "densenet",
):
    """Build a densely connected network.

    Args:
        block_depths: layers per dense block, e.g. (6, 12, 24, 16) for DenseNet-121.
        growth_rate: k, the channels each layer adds (32 on ImageNet, 12/24/40 on CIFAR).
        compression: θ in (0, 1], the channel factor of every transition (0.5 for DenseNet-C/BC,
            1 for the plain DenseNet).
        bottleneck: 1×1 conv to ``bottleneck_width·k`` channels before each 3×3 (DenseNet-B).
        bottleneck_width: the bottleneck's factor (4 in the paper).
        stem: "imagenet" (7×7/2 conv, BN, act, 3×3/2 max-pool) or "cifar" (one 3×3 conv).
        stem_width: channels of the stem convolution; ``None`` gives 2k, or 16 for a CIFAR network
            without bottleneck and compression (the paper's choices).
        dropout_rate: dropout after each convolution (0.2 in the paper's CIFAR runs without
            augmentation).
        activation: activation name or callable of every composite function.
        include_top, weights, input_tensor, input_shape, pooling, classes, classifier_activation:
            as in keras.applications. ``weights`` is None or a ``.weights.h5``/``.keras`` file.
        features_only: return a dict of feature maps ``{"stem", "block1", ..., "blockN"}``
            (the last one after the final BN-act).
        name: model name.

    Returns:
        A functional ``keras.Model``.

    Raises:
        ValueError: invalid depths, growth rate, compression, bottleneck width, stem, dropout rate or
            input size, naming the value and what is allowed.
    """
    depths = _check_block_depths(block_depths)
    _check_positive_int("growth_rate", growth_rate)
    _check_positive_int("bottleneck_width", bottleneck_width)
    if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0.0 < compression <= 1.0:
        raise ValueError(f"compression must be in (0, 1] (0.5 for DenseNet-C/BC, 1 for none), got {compression!r}")
    if stem not in DENSENET_STEMS:
        raise ValueError(f"unknown stem {stem!r}; allowed: {', '.join(map(repr, DENSENET_STEMS))}")
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}")
    if stem_width is None:
        plain_cifar = stem == "cifar" and not bottleneck and compression == 1.0
        stem_width = 16 if plain_cifar else 2 * growth_rate
    _check_positive_int("stem_width", stem_width)
    activation = resolve_activation(activation)

    stem_stride = 4 if stem == "imagenet" else 1
    total_stride = stem_stride * 2 ** (len(depths) - 1)
    inputs, x = model_input(input_tensor, input_shape,
                            default_shape=(224, 224, 3) if stem == "imagenet" else (32, 32, 3),
                            min_size=total_stride)
    allow_deep_graphs(8 * sum(depths))

    if stem == "imagenet":
        x = layers.ZeroPadding2D(3, name="stem_pad")(x)
        x = layers.Conv2D(stem_width, 7, strides=2, use_bias=False, kernel_initializer=dense_kernel_initializer(),
                          name="stem_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name="stem_bn")(x)
        x = activation_layer(activation, name="stem_act")(x)
        x = layers.ZeroPadding2D(1, name="stem_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name="stem_pool")(x)
    else:
        x = layers.Conv2D(stem_width, 3, padding="same", use_bias=False, kernel_initializer=dense_kernel_initializer(),
                          name="stem_conv")(x)
    features = {"stem": x}

    layer_kwargs = dict(bottleneck=bottleneck, bottleneck_width=bottleneck_width, activation=activation,
                        dropout_rate=dropout_rate, bn_epsilon=BN_EPSILON)
    for b, depth in enumerate(depths, start=1):
        x = dense_block(x, depth, growth_rate, name=f"block{b}", **layer_kwargs)
        features[f"block{b}"] = x
        if b < len(depths):
            x = transition_layer(x, compression, activation=activation, dropout_rate=dropout_rate,
                                 bn_epsilon=BN_EPSILON, name=f"transition{b}")
    x = layers.BatchNormalization(epsilon=BN_EPSILON, name="post_bn")(x)
    x = activation_layer(activation, name="post_act")(x)
    features[f"block{len(depths)}"] = x

    outputs = features if features_only else classification_head(
        x, include_top=include_top, pooling=pooling, classes=classes, classifier_activation=classifier_activation)
    model = keras.Model(inputs, outputs, name=name)
    return load_weights(model, weights)


def _check_positive_int(what: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def _check_block_depths(block_depths):
    depths = tuple(block_depths)
    if not depths or any(isinstance(d, bool) or not isinstance(d, int) or d < 1 for d in depths):
        raise ValueError(f"block_depths must be positive integers, one per dense block, got {block_depths!r}")
    return depths


def cifar_block_depth(depth: int, bottleneck: bool) -> int:
    """Layers per dense block of a 3-block CIFAR DenseNet of total depth ``L``.

    Plain layers (one conv) give L = 3n + 4, bottleneck layers (two convs) L = 6n + 4: the stem
    conv, the two transitions and the classifier make up the 4.
    """
    convs = 2 if bottleneck else 1
    per_n = 3 * convs
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < per_n + 4 or (depth - 4) % per_n:
        form = "6n+4 (100, 190, 250, ...)" if bottleneck else "3n+4 (40, 100, ...)"
        raise ValueError(f"CIFAR DenseNet depth {depth!r} is not of the form {form} "
                         f"for bottleneck={bottleneck!r}")
    return (depth - 4) // per_n


def CifarDenseNet(depth: int = 40, *, growth_rate: int = 12, bottleneck: bool = False, compression: float = 1.0,
                  input_shape=None, classes: int = 10, name: str = "cifar_densenet", **kwargs):
    """The paper's CIFAR DenseNet: a 3×3 stem and three dense blocks of equal depth.

    Args:
        depth: total depth L; 3n+4 without bottleneck (40, 100), 6n+4 with it (100, 190, 250).
        growth_rate: k (12, 24 or 40 in the paper).
        bottleneck: DenseNet-B layers.
        compression: θ of the transitions (0.5 for DenseNet-BC).
        input_shape, classes, name: as in :func:`DenseNet` (defaults: 32×32×3, 10 classes).
        **kwargs: any other keyword of :func:`DenseNet` (dropout_rate, activation, stem_width, ...).
    """
    n = cifar_block_depth(depth, bottleneck)
    return DenseNet((n, n, n), growth_rate=growth_rate, compression=compression, bottleneck=bottleneck,
                    stem="cifar", input_shape=input_shape, classes=classes, name=name, **kwargs)


CifarDenseNet.forwards_to = DenseNet
CifarDenseNet.fixed_keywords = ("block_depths", "stem")
