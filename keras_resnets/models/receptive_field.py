"""Receptive-field arithmetic for any functional model: size, jump and effective stride per layer.

Along one spatial axis, a layer with kernel ``k``, stride ``s`` and dilation ``d`` that reads a map
whose positions are ``j`` input pixels apart (the *jump*) and see ``r`` input pixels each gives

    r' = r + (k - 1)·d·j        j' = j·s

(the correct form of the seed's recursion: the dilation multiplies the kernel's extent). The
*effective stride* of the layer is ``d·j``, the spacing in input pixels between its kernel's taps:
what a dilated convolution enlarges while the jump (the map's resolution) stays put. Where maps
merge (Add, Concatenate, Multiply) the receptive field is the largest of the inputs'; upsampling
divides the jump. Layers that do not change the geometry (BN, activations, padding) pass it on.
Sizes are those of the height axis; every model in the registry is symmetric.

    >>> rows = receptive_fields(keras_resnets.create_model("resnet50"))
    >>> print(format_receptive_fields(rows))
"""
from __future__ import annotations

import typing

import keras


class ReceptiveField(typing.NamedTuple):
    """One row of :func:`receptive_fields`: the geometry after ``layer``."""

    layer: str
    kernel: int
    stride: int
    dilation: int
    rf: int
    jump: float
    effective_stride: float


_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOLINGS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)
_GLOBAL = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def _geometry(layer):
    """(kernel, stride, dilation, upsampling) of ``layer`` along the height axis, or None if it keeps the geometry."""
    if isinstance(layer, _CONVOLUTIONS):
        return layer.kernel_size[0], layer.strides[0], layer.dilation_rate[0], 1
    if isinstance(layer, _POOLINGS):
        return layer.pool_size[0], layer.strides[0], 1, 1
    if isinstance(layer, keras.layers.UpSampling2D):
        return 1, 1, 1, layer.size[0]
    return None


def receptive_fields(model: keras.Model) -> list[ReceptiveField]:
    """Receptive field, jump and effective stride after every layer that changes them.

    Args:
        model: a functional Keras model taking one image input (any registry model).

    Returns:
        One :class:`ReceptiveField` per convolution, pooling and upsampling layer, in graph order.
        A global pooling row has ``rf`` equal to the largest receptive field before it (it then
        sees the whole input) and ``kernel`` 0.
    """
    state = {}  # id(KerasTensor) -> (rf, jump)
    for tensor in model.inputs:
        state[id(tensor)] = (1, 1.0)
    rows = []
    for layer in model.layers:
        for node in layer._inbound_nodes:
            inputs = [t for t in node.input_tensors if id(t) in state]
            if not inputs:
                continue
            rf = max(state[id(t)][0] for t in inputs)
            jump = max(state[id(t)][1] for t in inputs)
            geometry = _geometry(layer)
            if geometry is not None:
                kernel, stride, dilation, upsampling = geometry
                effective_stride = dilation * jump
                rf, jump = rf + (kernel - 1) * effective_stride, jump * stride / upsampling
                rows.append(ReceptiveField(layer.name, kernel, stride, dilation, int(rf), jump, effective_stride))
            elif isinstance(layer, _GLOBAL):
                rows.append(ReceptiveField(layer.name, 0, 1, 1, int(rf), jump, jump))
            for tensor in keras.tree.flatten(node.output_tensors):
                state[id(tensor)] = (rf, jump)
    return rows


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def format_receptive_fields(rows: list[ReceptiveField]) -> str:
    """A fixed-width table of :func:`receptive_fields` rows (one line per layer, with a header)."""
    header = ("layer", "kernel", "stride", "dilation", "rf", "jump", "eff. stride")
    lines = [(r.layer, "global" if r.kernel == 0 else str(r.kernel), str(r.stride), str(r.dilation), str(r.rf),
              _number(r.jump), _number(r.effective_stride)) for r in rows]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(["{:<%d}" % widths[0]] + ["{:>%d}" % w for w in widths[1:]])
    return "\n".join(fmt.format(*row) for row in [header, *lines])
