"""Argument checks shared by train, tune, evaluate and the data loaders (plain Python: no Keras)."""
from __future__ import annotations

import numbers


def positive(name: str, value, kind=int, *, optional: bool = True):
    """``value`` as a positive ``kind`` (``int`` or ``float``); ``None`` kept when ``optional``.

    Raises:
        ValueError: ``<name> must be a positive integer; got <value>`` (``number`` for floats).
    """
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (kind is int and value != int(value)) \
            or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if kind is int else 'number'}; got {value!r}")
    return kind(value)
