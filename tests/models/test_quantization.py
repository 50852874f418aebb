"""Keras 3 quantization-aware training layers (any backend): fake quantization, BN folding, training."""
import numpy as np
import pytest

import keras
from keras_resnets.export.keras_qat import quantization_aware_model
from keras_resnets.layers.quantization import (FakeQuant, FoldedBatchNormalization, QuantizedActivation,
                                               QuantizedConv2D, QuantizedDense, fake_quant_per_channel)


def _tiny_net():
    inputs = keras.Input((8, 8, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="stem")(inputs)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.Activation("relu", name="stem_relu")(x)
    y = keras.layers.Conv2D(4, 3, padding="same", use_bias=False, name="branch")(x)
    y = keras.layers.BatchNormalization(name="branch_bn")(y)
    x = keras.layers.Activation("tanh", name="out_act")(keras.layers.Add(name="add")([x, y]))
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="fc")(x))
    rng = np.random.default_rng(0)
    for norm in (model.get_layer("stem_bn"), model.get_layer("branch_bn")):  # non-trivial statistics
        norm.set_weights([rng.uniform(0.5, 1.5, 4), rng.normal(size=4), rng.normal(size=4), rng.uniform(0.5, 2, 4)])
    return model


def test_fake_quant_range_starts_at_the_first_batch_then_moves_slowly_and_rounds_to_its_grid():
    layer = FakeQuant(momentum=0.9)
    first = np.linspace(-1.0, 3.0, 64, dtype="float32").reshape(4, 16)
    out = keras.ops.convert_to_numpy(layer(first, training=True))
    assert float(keras.ops.convert_to_numpy(layer.range_min)) == pytest.approx(-1.0)
    assert float(keras.ops.convert_to_numpy(layer.range_max)) == pytest.approx(3.0)
    step = 4.0 / 255
    assert np.max(np.abs(out - first)) <= step / 2 + 1e-5 and len(np.unique(np.round(out / step, 3))) <= 256
    layer(first * 10, training=True)  # an outlier batch moves the range by 10% only
    assert float(keras.ops.convert_to_numpy(layer.range_max)) == pytest.approx(0.9 * 3.0 + 0.1 * 30.0, rel=1e-5)
    frozen = keras.ops.convert_to_numpy(layer(first * 100, training=False))  # inference clips to the range
    assert frozen.max() <= float(keras.ops.convert_to_numpy(layer.range_max)) + 1e-4


def test_per_channel_weight_quantization_is_symmetric_with_127_levels_per_output_channel():
    kernel = np.random.default_rng(1).normal(size=(3, 3, 2, 4)).astype("float32")
    kernel[..., 0] *= 100.0  # one channel's range must not coarsen the others
    quantized = keras.ops.convert_to_numpy(fake_quant_per_channel(kernel))
    for channel in range(4):
        scale = np.abs(kernel[..., channel]).max() / 127
        levels = quantized[..., channel] / scale
        np.testing.assert_allclose(levels, np.round(levels), atol=2e-3)
        assert np.max(np.abs(quantized[..., channel] - kernel[..., channel])) <= scale / 2 + 1e-5


def test_qat_model_folds_batchnorm_and_quantizes_around_conv_and_dense():
    model = _tiny_net()
    qat, info = quantization_aware_model(model)
    assert info == {"quantized_layers": 3, "folded_batchnorms": 2}
    assert isinstance(qat.get_layer("stem_bn"), FoldedBatchNormalization)
    assert isinstance(qat.get_layer("stem"), QuantizedConv2D) and qat.get_layer("stem").use_bias
    assert isinstance(qat.get_layer("out_act"), QuantizedActivation)
    # inputs fed by the model input or an activation are already quantized; the pooled features are not
    assert not qat.get_layer("stem").quantize_input and not qat.get_layer("branch").quantize_input
    assert qat.get_layer("fc").quantize_input and isinstance(qat.get_layer("fc"), QuantizedDense)
    x = np.random.default_rng(2).normal(size=(16, 8, 8, 2)).astype("float32")
    qat(x, training=True)  # sets the activation ranges
    float_out, qat_out = (keras.ops.convert_to_numpy(m(x, training=False)) for m in (model, qat))
    assert np.max(np.abs(float_out - qat_out)) < 0.05  # folded weights + 8-bit rounding only


def test_qat_model_trains_and_round_trips_through_keras_files(tmp_path):
    """Trainable under both backends: a few steps lower the loss and move the folded kernels."""
    qat, _ = quantization_aware_model(_tiny_net())
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 8, 8, 2)).astype("float32")
    y = (x[..., 0].mean(axis=(1, 2)) > 0).astype("int32") + (x[..., 1].mean(axis=(1, 2)) > 0)
    qat.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    before = keras.ops.convert_to_numpy(qat.get_layer("stem").kernel).copy()
    history = qat.fit(x, y, batch_size=16, epochs=4, verbose=0).history["loss"]
    assert history[-1] < history[0]
    assert not np.allclose(before, keras.ops.convert_to_numpy(qat.get_layer("stem").kernel))
    qat.save(tmp_path / "qat.keras")
    loaded = keras.saving.load_model(tmp_path / "qat.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x[:4], training=False)),
                               keras.ops.convert_to_numpy(qat(x[:4], training=False)), atol=1e-6)
