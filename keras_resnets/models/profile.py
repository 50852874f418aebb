"""Model profile: parameters, multiply-accumulates and output shape of each part (Keras only)."""
from __future__ import annotations

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass
class PartProfile:
    """One named part of a model (the stem, a stage, the head): its output shape, parameters and MACs."""

    name: str
    output_shape: tuple
    params: int
    macs: int


@dataclasses.dataclass
class ModelProfile:
    """Totals of a model and its parts (see :func:`profile_model`)."""

    name: str
    input_shape: tuple
    params: int
    trainable_params: int
    macs: int
    parts: list

    @property
    def flops(self) -> int:
        """Floating-point operations: 2 per multiply-accumulate (convolutions and dense layers)."""
        return 2 * self.macs

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "flops": self.flops}

    def format(self) -> str:
        """A human-readable table."""
        lines = [
            f"{self.name}: input {self.input_shape}",
            f"  parameters {self.params:,} ({self.trainable_params:,} trainable)",
            f"  {self.macs / 1e9:.3f} GMACs = {self.flops / 1e9:.3f} GFLOPs per image",
            f"  {'part':<14}{'output shape':<22}{'params':>14}{'MMACs':>12}",
        ]
        for part in self.parts:
            shape = "x".join("?" if d is None else str(d) for d in part.output_shape)
            lines.append(f"  {part.name:<14}{shape:<22}{part.params:>14,}{part.macs / 1e6:>12.1f}")
        return "\n".join(lines)


def _count(weights) -> int:
    return int(sum(np.prod(w.shape) for w in weights))


def layer_macs(layer) -> int:
    """Multiply-accumulates of one layer for a single image (convolutions and dense layers)."""
    if isinstance(layer, keras.layers.Conv2D):  # also DepthwiseConv2D / Conv2DTranspose subclasses
        out_shape = layer.output.shape
        kh, kw = layer.kernel_size
        cin = layer.input.shape[-1]
        groups = getattr(layer, "groups", 1) or 1
        return int(out_shape[1] * out_shape[2] * kh * kw * (cin // groups) * out_shape[-1]) if None not in out_shape[1:3] else 0
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod([d for d in layer.input.shape[1:] if d is not None]) * layer.units)
    return 0


def _part_of(layer_name: str) -> str:
    """Layers named ``stem_*``, ``stage3_unit2_*``, ``transition1_*`` belong to part stem/stage3/transition1."""
    return layer_name.split("_")[0]


def profile_model(model: keras.Model) -> ModelProfile:
    """Parameters, MACs and the output shape of each part of ``model``.

    Parts are groups of consecutive layers sharing the first token of their names (``stem``,
    ``stage1`` ... for ResNets). MACs need a static input size (they are 0 for unknown sizes).
    """
    parts: dict[str, PartProfile] = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        key = _part_of(layer.name)
        output = layer.output
        shape = tuple(output.shape[1:]) if hasattr(output, "shape") else ()
        part = parts.setdefault(key, PartProfile(key, shape, 0, 0))
        part.output_shape = shape
        part.params += _count(layer.weights)
        part.macs += layer_macs(layer)
    return ModelProfile(
        name=model.name,
        input_shape=tuple(model.inputs[0].shape[1:]),
        params=model.count_params(),
        trainable_params=_count(model.trainable_weights),
        macs=sum(p.macs for p in parts.values()),
        parts=list(parts.values()),
    )
