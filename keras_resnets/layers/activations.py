"""Activation resolution: one place that turns a user's activation choice into a Keras layer.

The CIFAR-10 study compares sigmoid, tanh, ReLU and leaky ReLU inside the same network, so the
activation is a single argument that every unit uses wherever it activates.
"""
from __future__ import annotations

import keras

# Names a user is likely to type that Keras spells differently.
_ALIASES = {"leaky relu": "leaky_relu", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu", "swish": "silu"}


def known_activations() -> list[str]:
    """Names accepted by :func:`resolve_activation` (every function in ``keras.activations``)."""
    names = [
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in {"get", "serialize", "deserialize"} and callable(getattr(keras.activations, n))
    ]
    return sorted(names)


def resolve_activation(activation):
    """Validate an activation given by name or as a callable.

    Args:
        activation: a Keras activation name ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", ...;
            spaces and hyphens are read as underscores) or a callable taking and returning a tensor.

    Returns:
        The canonical name (str) or the callable itself.

    Raises:
        ValueError: for an unknown name or a non-callable object, naming the value and the allowed names.
    """
    if callable(activation):
        return activation
    if not isinstance(activation, str):
        raise ValueError(f"activation must be a name or a callable, got {activation!r}")
    name = activation.strip().lower()
    name = _ALIASES.get(name, name).replace("-", "_").replace(" ", "_")
    if name not in known_activations():
        raise ValueError(f"unknown activation {activation!r}; allowed: {', '.join(known_activations())} or a callable")
    return name


def activation_layer(activation, name: str | None = None) -> keras.layers.Layer:
    """A Keras ``Activation`` layer for a resolved activation (see :func:`resolve_activation`)."""
    return keras.layers.Activation(resolve_activation(activation), name=name)
