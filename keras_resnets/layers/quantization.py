"""Quantization-aware training layers for Keras 3 models (any backend).

8-bit fake quantization as TFLite's int8 kernels compute it:

- weights symmetric, narrow range ([-127, 127], zero point 0), the range taken from the current
  weights at every step (so it follows the fine-tuning): per output channel for ``Conv2D``, per
  tensor for ``Dense`` (TFLite stores a fully-connected kernel transposed, and its converter
  cannot move a per-channel axis through that transpose; tfmot's default 8-bit scheme does the same);
- activations per tensor, asymmetric ([-128, 127] with a zero point), the range a moving average
  of the batch minimum and maximum seen in training (the first batch sets it), fixed at inference.

Rounding uses ``keras.quantizers.fake_quant_with_min_max_vars``: its gradient is the
straight-through estimator inside the range, and under the TensorFlow backend it emits
``tf.quantization.fake_quant_with_min_max_vars(_per_channel)``, the ops the TFLite converter reads
as quantization ranges. :class:`QuantizedConv2D` and :class:`QuantizedDense` fake-quantize their
input and their kernel; a BatchNormalization after them is folded into kernel and bias before
fine-tuning (``keras_resnets.export.keras_qat``), so the trained weights are the ones TFLite runs.
"""
from __future__ import annotations

import keras
from keras import ops

NUM_BITS = 8
_MIN_RANGE = 1e-6  # a constant tensor must still have a non-empty range


@keras.saving.register_keras_serializable(package="keras_resnets")
class FakeQuant(keras.layers.Layer):
    """Per-tensor 8-bit fake quantization of activations with a moving-average range.

    Args:
        momentum: weight of the old range in the moving average (per training step).
    """

    def __init__(self, momentum: float = 0.99, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"FakeQuant momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)

    def build(self, input_shape):
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="zeros", trainable=False)
        # 0 until the first training batch has set the range
        self.range_set = self.add_weight(name="range_set", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs, training=None):
        low, high = self.range_min, self.range_max
        if training:
            low, high = self._update_range(inputs)
        low = ops.minimum(low, 0.0)  # zero must be exactly representable (padding, ReLU)
        high = ops.maximum(ops.maximum(high, 0.0), low + _MIN_RANGE)
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, low, high, num_bits=NUM_BITS)

    def _update_range(self, inputs):
        batch_min = ops.stop_gradient(ops.cast(ops.min(inputs), "float32"))
        batch_max = ops.stop_gradient(ops.cast(ops.max(inputs), "float32"))
        keep = self.momentum * self.range_set  # 0 on the first batch: take the batch's range
        low = keep * self.range_min + (1.0 - keep) * batch_min
        high = keep * self.range_max + (1.0 - keep) * batch_max
        self.range_min.assign(low)
        self.range_max.assign(high)
        self.range_set.assign(1.0)
        return low, high

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


def fake_quant_per_tensor(kernel):
    """Symmetric narrow-range 8-bit fake quantization of ``kernel`` with one range."""
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel)), _MIN_RANGE))
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=NUM_BITS, narrow_range=True)


def fake_quant_per_channel(kernel):
    """Symmetric narrow-range 8-bit fake quantization of ``kernel`` per output channel (last axis)."""
    reduce_axes = tuple(range(len(kernel.shape) - 1))
    bound = ops.stop_gradient(ops.maximum(ops.max(ops.abs(kernel), axis=reduce_axes), _MIN_RANGE))
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=NUM_BITS,
                                                         narrow_range=True, axis=-1)


class _QuantizedInput:
    """What both quantized layers share: moving-average ``FakeQuant`` of their input and of their
    output before the activation, each optional, and their config."""

    def _add_input_quantizer(self, momentum: float, quantize_input: bool, quantize_output: bool) -> None:
        self.momentum = float(momentum)
        self.quantize_input = bool(quantize_input)
        self.quantize_output = bool(quantize_output)
        self.input_quantizer = FakeQuant(momentum=momentum, name="input_quantizer") if quantize_input else None
        self.output_quantizer = FakeQuant(momentum=momentum, name="output_quantizer") if quantize_output else None

    def build(self, input_shape):
        super().build(input_shape)
        if self.input_quantizer is not None:
            self.input_quantizer.build(input_shape)
        if self.output_quantizer is not None:
            self.output_quantizer.build(self.compute_output_shape(input_shape))

    def _quantized_input(self, inputs, training):
        return self.input_quantizer(inputs, training=training) if self.input_quantizer is not None else inputs

    def _finish(self, outputs, training):
        if self.output_quantizer is not None:
            outputs = self.output_quantizer(outputs, training=training)
        return self.activation(outputs) if self.activation is not None else outputs

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "quantize_input": self.quantize_input,
                "quantize_output": self.quantize_output}


@keras.saving.register_keras_serializable(package="keras_resnets")
class QuantizedConv2D(_QuantizedInput, keras.layers.Conv2D):
    """``Conv2D`` with fake-quantized input (per tensor) and kernel (per output channel).

    Takes ``Conv2D``'s arguments plus ``momentum`` (of the input range's moving average).
    """

    def __init__(self, *args, momentum: float = 0.99, quantize_input: bool = True, quantize_output: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._add_input_quantizer(momentum, quantize_input, quantize_output)

    def call(self, inputs, training=None):
        outputs = self.convolution_op(self._quantized_input(inputs, training), fake_quant_per_channel(self.kernel))
        if self.use_bias:
            outputs = ops.add(outputs, ops.reshape(self.bias, (1,) * (self.rank + 1) + (self.filters,)))
        return self._finish(outputs, training)


@keras.saving.register_keras_serializable(package="keras_resnets")
class QuantizedDense(_QuantizedInput, keras.layers.Dense):
    """``Dense`` with fake-quantized input and kernel (both per tensor).

    Takes ``Dense``'s arguments plus ``momentum`` (of the input range's moving average).
    """

    def __init__(self, *args, momentum: float = 0.99, quantize_input: bool = True, quantize_output: bool = False,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self._add_input_quantizer(momentum, quantize_input, quantize_output)

    def call(self, inputs, training=None):
        outputs = ops.matmul(self._quantized_input(inputs, training), fake_quant_per_tensor(self.kernel))
        if self.use_bias:
            outputs = ops.add(outputs, self.bias)
        return self._finish(outputs, training)


@keras.saving.register_keras_serializable(package="keras_resnets")
class FoldedBatchNormalization(keras.layers.Layer):
    """Identity standing where a BatchNormalization was folded into the preceding layer's weights.

    Keeps the layer's name and call signature, so the rest of the graph is cloned unchanged.
    """

    def call(self, inputs, training=None, mask=None):
        return inputs

    def compute_output_shape(self, input_shape):
        return input_shape


@keras.saving.register_keras_serializable(package="keras_resnets")
class QuantizedActivation(keras.layers.Activation):
    """``Activation`` whose output is fake-quantized (per tensor).

    Quantizing the activation's output, not each consumer's input, gives the tensor one range for
    all its consumers (a convolution and a residual addition), as TFLite stores it; the converter
    then fuses the activation into the convolution before it.

    Takes ``Activation``'s arguments plus ``momentum`` (of the range's moving average).
    """

    def __init__(self, activation, momentum: float = 0.99, **kwargs):
        super().__init__(activation, **kwargs)
        self.momentum = float(momentum)
        self.output_quantizer = FakeQuant(momentum=momentum, name="output_quantizer")

    def build(self, input_shape):
        self.output_quantizer.build(input_shape)
        self.built = True

    def call(self, inputs, training=None):
        return self.output_quantizer(super().call(inputs), training=training)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}
