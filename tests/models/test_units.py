"""Residual units compute what the papers define: placements, shortcuts, downsampling, merges."""
import keras
import numpy as np
import pytest

from keras_resnets.layers import PLACEMENTS, SHORTCUTS, ChannelZeroPad, StochasticDepth, UnitSpec, residual_unit

from .helpers import randomise_statistics

X = np.random.default_rng(0).normal(size=(2, 8, 8, 4)).astype("float32")


def unit_model(channels_in=4, filters=4, stride=1, randomise=True, **spec_kwargs):
    inputs = keras.Input((8, 8, channels_in))
    outputs = residual_unit(inputs, filters, UnitSpec(**spec_kwargs), stride=stride, name="u")
    model = keras.Model(inputs, outputs)
    if randomise:
        randomise_statistics(model, seed=3, conv_biases=False)  # keep the gates' initial bias
    return model


def run(model, x=X):
    return keras.ops.convert_to_numpy(model(x, training=False))


def L(model, name):
    """Call a layer of ``model`` in inference mode (so the expected formulas reuse its weights)."""
    layer = model.get_layer(name)
    return lambda t: layer(t, training=False) if isinstance(layer, keras.layers.BatchNormalization) else layer(t)


relu = keras.ops.relu


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_activation_placements_follow_identity_mappings_fig4(placement):
    m = unit_model(placement=placement)
    conv1, conv2 = L(m, "u_conv1"), L(m, "u_conv2")
    x = X
    if placement == "original":
        expected = relu(x + L(m, "u_bn2")(conv2(relu(L(m, "u_bn1")(conv1(x))))))
    elif placement == "bn_after_addition":
        expected = relu(L(m, "u_post_bn")(x + conv2(relu(L(m, "u_bn1")(conv1(x))))))
    elif placement == "relu_before_addition":  # also the study's ReLU(F(x)) + x
        expected = x + relu(L(m, "u_bn2")(conv2(relu(L(m, "u_bn1")(conv1(x))))))
    elif placement == "relu_only_preact":
        expected = x + L(m, "u_bn2")(conv2(relu(L(m, "u_bn1")(conv1(relu(x))))))
    else:  # full_preact
        expected = x + conv2(relu(L(m, "u_bn1")(conv1(relu(L(m, "u_preact_bn")(x))))))
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_bottleneck_widths_and_stride_position():
    for position, strided in (("1x1", "u_conv1"), ("3x3", "u_conv2")):
        m = unit_model(channels_in=8, filters=4, stride=2, kind="bottleneck", stride_position=position)
        assert m.output.shape == (None, 4, 4, 16)
        assert m.get_layer(strided).strides == (2, 2)
        assert [m.get_layer(f"u_conv{i}").filters for i in (1, 2, 3)] == [4, 4, 16]
        assert m.get_layer("u_shortcut_conv").strides == (2, 2)


def test_inverted_bottleneck_expands_in_the_middle():
    m = unit_model(channels_in=4, filters=4, kind="inverted_bottleneck", expansion=4)
    assert [m.get_layer(f"u_conv{i}").filters for i in (1, 2, 3)] == [16, 16, 4]
    assert m.output.shape == (None, 8, 8, 4)


def test_add_squared_shortcut_is_relu_of_f_plus_x_squared():
    m = unit_model(merge="add_squared_shortcut")
    f = L(m, "u_bn2")(L(m, "u_conv2")(relu(L(m, "u_bn1")(L(m, "u_conv1")(X)))))
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(relu(f + X * X)), atol=1e-5)


def _branch(m, x=X):
    return L(m, "u_bn2")(L(m, "u_conv2")(relu(L(m, "u_bn1")(L(m, "u_conv1")(x)))))


@pytest.mark.parametrize("scale_both", [False, True])
def test_constant_scaling(scale_both):
    m = unit_model(shortcut="constant_scaling", shortcut_scale=0.5, scale_both=scale_both)
    f = _branch(m) * (0.5 if scale_both else 1.0)
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(relu(f + 0.5 * X)), atol=1e-5)


@pytest.mark.parametrize("kind", ["exclusive_gating", "shortcut_only_gating"])
def test_gating_shortcuts(kind):
    m = unit_model(shortcut=kind, gate_bias=-2.0)
    gate_layer = m.get_layer("u_gate")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(gate_layer.bias), -2.0)
    g = gate_layer(X)
    f = _branch(m)
    if kind == "exclusive_gating":
        f = f * g
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(relu(f + X * (1.0 - g))), atol=1e-5)


def test_conv_shortcut_projects_every_unit():
    m = unit_model(shortcut="conv")
    expected = relu(_branch(m) + L(m, "u_shortcut_bn")(L(m, "u_shortcut_conv")(X)))
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(expected), atol=1e-5)


def test_dropout_shortcut_drops_only_in_training():
    m = unit_model(shortcut="dropout", shortcut_dropout=0.5)
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(relu(_branch(m) + X)), atol=1e-5)
    assert m.get_layer("u_shortcut_dropout").rate == 0.5
    trained = keras.ops.convert_to_numpy(m(X, training=True))
    assert not np.allclose(trained, run(m))


def test_option_a_subsamples_and_zero_pads():
    inputs = keras.Input((8, 8, 4))
    out = residual_unit(inputs, 8, UnitSpec(downsample="A"), stride=2, name="u")
    m = keras.Model(inputs, out)
    shortcut = keras.Model(inputs, m.get_layer("u_shortcut_zeropad").output)
    s = keras.ops.convert_to_numpy(shortcut(X))
    np.testing.assert_array_equal(s[..., :4], X[:, ::2, ::2, :])
    np.testing.assert_array_equal(s[..., 4:], 0.0)
    assert not any("shortcut_conv" in layer.name for layer in m.layers)  # parameter-free


def test_option_b_projects_only_where_shape_changes_and_c_everywhere():
    def projections(downsample, stride, c_in, filters):
        inputs = keras.Input((8, 8, c_in))
        m = keras.Model(inputs, residual_unit(inputs, filters, UnitSpec(downsample=downsample), stride=stride, name="u"))
        return any(layer.name == "u_shortcut_conv" for layer in m.layers)

    assert projections("B", 2, 4, 8) and not projections("B", 1, 4, 4)
    assert projections("C", 1, 4, 4)


def test_plain_unit_has_no_shortcut():
    m = unit_model(plain=True)
    assert not any(isinstance(layer, keras.layers.Add) for layer in m.layers)
    np.testing.assert_allclose(run(m), keras.ops.convert_to_numpy(relu(_branch(m))), atol=1e-5)


@pytest.mark.parametrize("placement", PLACEMENTS)
def test_zero_init_residual_starts_every_branch_at_zero(placement):
    m = unit_model(placement=placement, zero_init_residual=True, randomise=False)
    x = np.abs(X)  # fresh BN: x / sqrt(1 + eps); ReLU keeps non-negative inputs
    expected = x / np.sqrt(1 + 1.001e-5) if placement == "bn_after_addition" else x
    np.testing.assert_allclose(run(m, x), expected, atol=1e-5)
    assert not np.allclose(run(unit_model(placement=placement, randomise=False), x), expected, atol=1e-3)


def test_activation_is_used_everywhere_the_unit_activates():
    m = unit_model(activation="tanh")
    acts = [layer.activation.__name__ for layer in m.layers if isinstance(layer, keras.layers.Activation)]
    assert acts and set(acts) == {"tanh"}


def test_every_shortcut_builds_with_every_placement():
    for placement in PLACEMENTS:
        for shortcut in SHORTCUTS:
            m = unit_model(channels_in=4, filters=8, stride=2, placement=placement, shortcut=shortcut)
            assert run(m).shape == (2, 4, 4, 8)


def test_stochastic_depth_is_identity_at_inference_and_drops_samples_in_training():
    layer = StochasticDepth(0.5, seed=1)
    x = np.ones((64, 2, 2, 3), "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    kept = y.reshape(64, -1).max(axis=1)
    assert set(np.round(kept, 5)) <= {0.0, 2.0} and 10 < (kept > 0).sum() < 54


def test_channel_zero_pad_config_roundtrip():
    layer = ChannelZeroPad(3)
    assert ChannelZeroPad.from_config(layer.get_config()).pad == 3
