"""The context module: layer layout, identity initialisation, variants and serialisation."""
import keras
import numpy as np
import pytest

from keras_resnets.layers.context import ContextIdentity, context_dilations, context_module, context_widths


def module_model(channels=5, size=32, **kwargs):
    inputs = keras.Input((size, size, channels))
    return keras.Model(inputs, context_module(inputs, **kwargs))


def non_negative_input(channels=5, size=32, seed=0):
    return np.random.default_rng(seed).uniform(0, 3, (2, size, size, channels)).astype("float32")


def test_basic_module_layers_follow_the_paper():
    model = module_model()
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.dilation_rate[0] for c in convs] == [1, 1, 2, 4, 8, 16, 1, 1]
    assert [c.kernel_size[0] for c in convs] == [3] * 7 + [1]
    assert all(c.filters == 5 for c in convs)
    acts = [layer for layer in model.layers if isinstance(layer, keras.layers.Activation)]
    assert len(acts) == 7  # ReLU after each layer but the last
    assert model.count_params() == 7 * (9 * 5 * 5 + 5) + (5 * 5 + 5)


def test_basic_module_is_the_identity_at_initialisation():
    x = non_negative_input()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(module_model()(x)), x)


def test_large_module_is_the_identity_at_initialisation_without_noise():
    model = module_model(variant="large", identity_noise=0.0)
    x = non_negative_input()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x, rtol=1e-5, atol=1e-5)


def test_large_module_with_default_noise_is_close_to_the_identity_and_breaks_symmetry():
    model = module_model(variant="large")
    x = non_negative_input()
    out = keras.ops.convert_to_numpy(model(x))
    assert np.max(np.abs(out - x)) < 0.1 * np.max(x)
    kernel = keras.ops.convert_to_numpy(model.get_layer("context_conv2").kernel)
    assert not np.allclose(kernel[..., 0], kernel[..., 1])  # the two copies of channel 0 differ


def test_large_module_widths():
    assert context_widths("large", 3, 7) == (6, 6, 12, 24, 48, 96, 96, 3)
    model = module_model(channels=2, variant="large")
    assert [layer.filters for layer in model.layers if isinstance(layer, keras.layers.Conv2D)] == \
        [4, 4, 8, 16, 32, 64, 64, 2]


def test_identity_does_not_hold_for_negative_inputs_through_relu():
    x = -non_negative_input()
    assert np.all(keras.ops.convert_to_numpy(module_model()(x)) == 0.0)


def test_extra_layers_for_large_inputs():
    assert context_dilations(8) == (1, 1, 2, 4, 8, 16, 1)
    assert context_dilations(10) == (1, 1, 2, 4, 8, 16, 32, 64, 1)
    model = module_model(size=16, context_layers=10)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 10
    x = non_negative_input(size=16)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), x)


def test_batch_norm_variant_is_the_identity_in_inference():
    model = module_model(batch_norm=True)
    assert sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers) == 7
    x = non_negative_input()
    # each BN divides by sqrt(1 + epsilon) at initialisation
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=False)), x, rtol=5e-3)


@pytest.mark.parametrize("kwargs, message", [
    (dict(dilations=(1, 0, 2)), r"dilations must be positive integers .* got \(1, 0, 2\)"),
    (dict(dilations=(1, -2)), "got \\(1, -2\\)"),
    (dict(context_layers=2), "context_layers must be an integer >= 4 .* got 2"),
    (dict(variant="huge"), "unknown context variant 'huge'; allowed: 'basic', 'large'"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        module_model(**kwargs)


def test_initializer_serialises_and_the_module_round_trips(tmp_path):
    init = ContextIdentity(4, noise_stddev=0.01, seed=3)
    assert keras.initializers.deserialize(keras.initializers.serialize(init)).get_config() == init.get_config()
    model = module_model(channels=4, size=16, variant="large")
    path = str(tmp_path / "context.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = non_negative_input(channels=4, size=16)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), atol=1e-6)
