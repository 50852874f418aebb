"""Argument types shared by the subcommands (plain Python: no Keras, no TensorFlow)."""
from __future__ import annotations

import argparse
import json


def parse_image_size(text: str):
    """``32`` or ``32x48`` -> (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) <= 0:
        raise argparse.ArgumentTypeError(f"image size must be N or HxW with positive integers; got {text!r}")
    return size


def parse_key_value(text: str):
    """``KEY=VALUE`` -> (key, value), VALUE parsed as JSON when possible (``depth=8``, ``shortcut="conv"``)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE; got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value
