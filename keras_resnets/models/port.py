"""Port keras.applications models (and their ImageNet weights) to keras_resnets models.

``from_keras_applications(model)`` takes a keras.applications ResNet50/101/152, ResNet50V2/101V2/152V2
(or any family registered with :func:`register_port`, e.g. DenseNet) and returns the equivalent
keras_resnets model carrying its weights, with the same predictions.

Our convolutions before BatchNormalization have no bias (as in the papers and torchvision, which is
why ``resnet50`` has exactly 25,557,032 parameters). A bias ``b`` in front of a BN folds exactly into the
BN's moving mean: BN(conv(x) + b) = BN'(conv(x)) with mean' = mean - b. In ResNetV2 the biases of the
last conv of each branch (and of projection shortcuts) add a per-channel constant to the residual
stream; it travels along identity shortcuts and is folded into the next BN that reads the stream.
"""
from __future__ import annotations

import re
from typing import Callable

import keras
import numpy as np

from keras_resnets.models.registry import build_registered

# keras.applications model name -> converter(source_model) -> keras_resnets model
_PORTS: dict[str, Callable[[keras.Model], keras.Model]] = {}
# keras_resnets model name -> keras.applications constructor name (ImageNet weights exist there)
IMAGENET_PORTS: dict[str, str] = {}
# Keywords that keep the architecture of the ported model (anything else changes it).
_APPLICATION_KEYWORDS = {"include_top", "input_tensor", "input_shape", "pooling", "classes", "classifier_activation"}


def register_port(keras_name: str, converter: Callable[[keras.Model], keras.Model], *,
                  our_name: str, application: str) -> None:
    """Register a converter for keras.applications models named ``keras_name`` (their ``model.name``).

    Args:
        keras_name: ``model.name`` of the keras.applications model, e.g. "resnet50v2".
        converter: function taking that model and returning the equivalent keras_resnets model.
        our_name: the keras_resnets registry name it corresponds to (gets ``weights="imagenet"``).
        application: the ``keras.applications`` constructor, e.g. "ResNet50V2".
    """
    _PORTS[keras_name] = converter
    IMAGENET_PORTS[our_name] = application


def from_keras_applications(model: keras.Model) -> keras.Model:
    """The keras_resnets equivalent of a keras.applications ``model``, carrying its weights.

    Raises:
        ValueError: if ``model`` is not a keras.applications model with a registered port.
    """
    if not isinstance(model, keras.Model) or model.name not in _PORTS:
        got = getattr(model, "name", type(model).__name__)
        raise ValueError(f"no keras_resnets port for model {got!r}; ported keras.applications models: "
                         f"{', '.join(sorted(_PORTS))}")
    return _PORTS[model.name](model)


def imagenet_model(name: str, **kwargs) -> keras.Model:
    """``create_model(name, weights="imagenet", **kwargs)``: load keras.applications weights and port them."""
    if name not in IMAGENET_PORTS:
        raise ValueError(f"no ImageNet weights for {name!r}; available for: {', '.join(sorted(IMAGENET_PORTS))}")
    changed = sorted(set(kwargs) - _APPLICATION_KEYWORDS)
    if changed:
        raise ValueError(f"weights='imagenet' fixes the architecture of {name!r}; keywords {changed} are not "
                         f"allowed with it (allowed: {', '.join(sorted(_APPLICATION_KEYWORDS))})")
    constructor = getattr(keras.applications, IMAGENET_PORTS[name])
    try:
        source = constructor(weights="imagenet", **kwargs)
    except Exception as err:  # no network: keras.utils.get_file raises from deep inside urllib
        raise ValueError(
            f"could not load ImageNet weights of keras.applications.{IMAGENET_PORTS[name]} for {name!r} "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}). Without network access, "
            f"put the weights file in ~/.keras/models/ (keras.utils.get_file's cache) and retry."
        ) from None
    return from_keras_applications(source)


# --- ResNet / ResNetV2 ------------------------------------------------------------------------------
_BLOCK = re.compile(r"conv(\d+)_block(\d+)_(\d|preact)_(conv|bn)$")


def _our_layer_name(keras_name: str) -> str:
    """keras.applications ResNet layer name -> keras_resnets layer name."""
    fixed = {"conv1_conv": "stem_conv", "conv1_bn": "stem_bn", "post_bn": "post_bn", "predictions": "predictions"}
    if keras_name in fixed:
        return fixed[keras_name]
    m = _BLOCK.match(keras_name)
    if not m:
        raise ValueError(f"unexpected layer {keras_name!r} in a keras.applications ResNet")
    stage, unit, index, kind = int(m[1]) - 1, int(m[2]), m[3], m[4]
    prefix = f"stage{stage}_unit{unit}"
    if index == "preact":
        return f"{prefix}_preact_bn"
    if index == "0":
        return f"{prefix}_shortcut_{kind}"
    return f"{prefix}_{kind}{index}"


def application_kwargs(source: keras.Model) -> dict:
    """include_top / classes / pooling / input_shape of a keras.applications model."""
    names = {layer.name for layer in source.layers}
    kwargs = {"input_shape": tuple(source.input_shape[1:]), "include_top": "predictions" in names}
    if kwargs["include_top"]:
        head = source.get_layer("predictions")
        kwargs["classes"] = head.units
        kwargs["classifier_activation"] = keras.activations.serialize(head.activation)
    else:
        kwargs["pooling"] = "avg" if "avg_pool" in names else "max" if "max_pool" in names else None
    return kwargs


def _port_resnet(source: keras.Model, our_name: str, v2: bool) -> keras.Model:
    layout = dict(downsample_position="last", stem_bias=True) if v2 else {}
    target = build_registered(our_name, **layout, **application_kwargs(source))
    weights = {layer.name: layer.get_weights() for layer in source.layers if layer.weights}

    mean_offsets = {}  # keras BN name -> constant to remove from its moving mean
    if not v2:
        for name, values in weights.items():
            if name.endswith("_conv"):
                mean_offsets[name[: -len("_conv")] + "_bn"] = values[1]
    else:
        stream = 0.0  # per-channel constant riding on the residual stream
        blocks = sorted({(int(m[1]), int(m[2])) for m in map(_BLOCK.match, weights) if m})
        for stage, unit in blocks:
            prefix = f"conv{stage}_block{unit}"
            mean_offsets[prefix + "_preact_bn"] = stream
            last_bias = weights[prefix + "_3_conv"][1]
            shortcut = weights.get(prefix + "_0_conv")
            stream = (shortcut[1] if shortcut is not None else stream) + last_bias
        mean_offsets["post_bn"] = stream

    for name, values in weights.items():
        layer = target.get_layer(_our_layer_name(name))
        if isinstance(layer, keras.layers.Conv2D):
            layer.set_weights(values[: len(layer.weights)])  # drop a bias our conv does not have
        elif isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = values
            layer.set_weights([gamma, beta, mean - np.asarray(mean_offsets.get(name, 0.0)), var])
        else:
            layer.set_weights(values)
    return target


for _depth in (50, 101, 152):
    register_port(f"resnet{_depth}", lambda m, d=_depth: _port_resnet(m, f"resnet{d}", v2=False),
                  our_name=f"resnet{_depth}", application=f"ResNet{_depth}")
    register_port(f"resnet{_depth}v2", lambda m, d=_depth: _port_resnet(m, f"resnet{d}_v2", v2=True),
                  our_name=f"resnet{_depth}_v2", application=f"ResNet{_depth}V2")


# --- DenseNet ---------------------------------------------------------------------
_KERAS_LAYER = re.compile(r"conv(\d+)_block(\d+)_(\d)_(conv|bn)$")
_KERAS_TRANSITION = re.compile(r"pool(\d+)_(conv|bn)$")
_LAYER_PARTS = {("0", "bn"): "bn1", ("1", "conv"): "conv1", ("1", "bn"): "bn2", ("2", "conv"): "conv2"}


def _our_densenet_layer(keras_name: str) -> str:
    """keras.applications DenseNet layer name -> keras_resnets layer name."""
    fixed = {"conv1_conv": "stem_conv", "conv1_bn": "stem_bn", "bn": "post_bn", "predictions": "predictions"}
    if keras_name in fixed:
        return fixed[keras_name]
    m = _KERAS_LAYER.match(keras_name)
    if m:
        return f"block{int(m[1]) - 1}_layer{m[2]}_{_LAYER_PARTS[(m[3], m[4])]}"
    m = _KERAS_TRANSITION.match(keras_name)
    if m:
        return f"transition{int(m[1]) - 1}_{m[2]}"
    raise ValueError(f"unexpected layer {keras_name!r} in a keras.applications DenseNet")


def _port_densenet(source: keras.Model, our_name: str) -> keras.Model:
    """Copy a keras.applications DenseNet's weights into ``create_model(our_name)``; same predictions."""
    target = build_registered(our_name, **application_kwargs(source))
    for layer in source.layers:
        if layer.weights:
            target.get_layer(_our_densenet_layer(layer.name)).set_weights(
                [np.asarray(w) for w in layer.get_weights()])
    return target


for _depth in (121, 169, 201):
    register_port(f"densenet{_depth}", lambda m, d=_depth: _port_densenet(m, f"densenet{d}"),
                  our_name=f"densenet{_depth}", application=f"DenseNet{_depth}")
