"""The generic builder: keras.applications arguments, features, depths, dilation, weights, bad input."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models import CifarResNet, ResNet

from .helpers import random_images


def test_cifar_depth_any_n():
    for depth, n in ((8, 1), (14, 2), (56, 9)):
        m = CifarResNet(depth, classes=10)
        units = {layer.name.split("_")[1] for layer in m.layers if layer.name.startswith("stage1_unit")}
        assert len(units) == n
    m = CifarResNet(11, unit="bottleneck", placement="full_preact", downsample="B")
    assert m.output.shape == (None, 10)


@pytest.mark.parametrize("depth", [21, 7, 0, "20"])
def test_cifar_depth_must_be_6n_plus_2(depth):
    with pytest.raises(ValueError, match=rf"CIFAR depth {depth!r} is not of the form 6n\+2"):
        keras_resnets.create_model("cifar_resnet20", depth=depth)


def test_bottleneck_depth_must_be_9n_plus_2():
    with pytest.raises(ValueError, match=r"CIFAR depth 100 is not of the form 9n\+2"):
        keras_resnets.create_model("preact_resnet164", depth=100)


def test_keras_applications_arguments():
    m = keras_resnets.create_model("resnet18", include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert m.output.shape == (None, 512)
    m = keras_resnets.create_model("resnet18", include_top=False, pooling="max", input_shape=(64, 64, 3))
    assert m.output.shape == (None, 512)
    m = keras_resnets.create_model("resnet18", include_top=False, input_shape=(64, 64, 3))
    assert m.output.shape == (None, 2, 2, 512)
    m = keras_resnets.create_model("cifar_resnet20", classes=3, classifier_activation=None)
    assert m.get_layer("predictions").activation.__name__ == "linear"
    tensor = keras.Input((32, 32, 1))
    m = keras_resnets.create_model("cifar_resnet20", input_tensor=tensor, classes=4)
    assert m.inputs[0] is tensor and m.output.shape == (None, 4)


def test_variable_input_size():
    m = keras_resnets.create_model("resnet18", include_top=False, input_shape=(None, None, 3))
    for size in (32, 96):
        assert m(random_images((size, size, 3), batch=1)).shape == (1, size // 32, size // 32, 512)


def test_features_only_returns_every_stage():
    m = keras_resnets.create_model("resnet50", features_only=True, input_shape=(64, 64, 3))
    shapes = {k: tuple(v.shape[1:]) for k, v in m.output.items()}
    assert shapes == {"stem": (16, 16, 64), "stage1": (16, 16, 256), "stage2": (8, 8, 512),
                      "stage3": (4, 4, 1024), "stage4": (2, 2, 2048)}


@pytest.mark.parametrize("output_stride,expected", [(8, 8), (16, 4), (32, 2)])
def test_output_stride_dilates_without_changing_weights(output_stride, expected):
    ref = keras_resnets.create_model("resnet18", include_top=False, input_shape=(64, 64, 3))
    m = keras_resnets.create_model("resnet18", include_top=False, input_shape=(64, 64, 3), output_stride=output_stride)
    assert m.output.shape == (None, expected, expected, 512)
    assert m.count_params() == ref.count_params()


def test_stochastic_depth_decays_linearly():
    m = keras_resnets.create_model("cifar_resnet20", depth=8, stochastic_depth=0.3)
    rates = [layer.rate for layer in m.layers if layer.name.endswith("_drop_path")]
    np.testing.assert_allclose(rates, [0.1, 0.2, 0.3])


def test_weights_file_roundtrip_and_foreign_weights(tmp_path):
    m = keras_resnets.create_model("cifar_resnet20", classes=10)
    path = tmp_path / "m.weights.h5"
    m.save_weights(path)
    again = keras_resnets.create_model("cifar_resnet20", classes=10, weights=str(path))
    for a, b in zip(m.weights, again.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    with pytest.raises(ValueError, match=r"weights file .*m\.weights\.h5.* (does not fit|could not be loaded into) model 'cifar_resnet32'|could not be loaded into 'cifar_resnet32'"):
        keras_resnets.create_model("cifar_resnet32", classes=10, weights=str(path))
    with pytest.raises(ValueError, match="no file at"):
        keras_resnets.create_model("cifar_resnet20", weights=str(tmp_path / "missing.weights.h5"))


def test_weights_of_another_architecture_name_both(tmp_path, recwarn):
    """Issue 16: ``weights=`` a file of another architecture ends in one line naming both (and
    Keras' per-layer "retain their freshly-initialized weights" warnings do not precede it)."""
    m = keras_resnets.create_model("cifar_resnet20", classes=10)
    m.save(tmp_path / "m.keras")
    m.save_weights(tmp_path / "m.weights.h5")
    with pytest.raises(ValueError, match="source 'cifar_resnet20' has 97 weight tensors, target 'cifar_resnet32' has 157") as err:
        keras_resnets.create_model("cifar_resnet32", classes=10, weights=str(tmp_path / "m.keras"))
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"source 'cifar_resnet20' has predictions/kernel of shape \(64, 10\), "
                                         r"target 'cifar_resnet20' has predictions/kernel of shape \(64, 7\)"):
        keras_resnets.create_model("cifar_resnet20", classes=7, weights=str(tmp_path / "m.keras"))
    with pytest.raises(ValueError, match="the file holds 97 weight tensors, 'cifar_resnet32' has 157") as err:
        keras_resnets.create_model("cifar_resnet32", classes=10, weights=str(tmp_path / "m.weights.h5"))
    assert "\n" not in str(err.value)
    assert not [w for w in recwarn if "freshly-initialized" in str(w.message)]


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"name": "resnet51"}, "unknown model 'resnet51'; did you mean resnet50"),
        ({"name": "resnet18", "shortcuts": "conv"}, "unknown keyword 'shortcuts' for model 'resnet18'; allowed: .*shortcut"),
        ({"name": "resnet18", "activation": "relu7"}, "unknown activation 'relu7'; allowed: .*leaky_relu"),
        ({"name": "resnet18", "shortcut": "gated"}, "unknown shortcut 'gated'; allowed: 'identity'"),
        ({"name": "resnet18", "placement": "preact"}, "unknown placement 'preact'; allowed: 'original'"),
        ({"name": "resnet18", "downsample": "D"}, "unknown downsample option 'D'; allowed: 'A', 'B', 'C'"),
        ({"name": "resnet18", "unit": "wide"}, "unknown unit 'wide'"),
        ({"name": "resnet18", "input_shape": (16, 16, 3)}, "input height 16 is too small .* at least 32"),
        ({"name": "cifar_resnet20", "input_shape": (2, 32, 3)}, "input height 2 is too small .* at least 4"),
        ({"name": "resnet18", "output_stride": 4}, "output_stride must be None or one of 8, 16, 32; got 4"),
        ({"name": "resnet18", "pooling": "mean"}, "unknown pooling 'mean'"),
        ({"name": "resnet18", "stochastic_depth": 1.5}, r"stochastic_depth must be in \[0, 1\), got 1.5"),
    ],
)
def test_bad_input_is_one_clear_value_error(kwargs, message):
    kwargs = dict(kwargs)
    with pytest.raises(ValueError, match=message):
        keras_resnets.create_model(kwargs.pop("name"), **kwargs)


def test_activation_by_name_alias_and_callable():
    for activation in ("leaky relu", "gelu", "sigmoid", keras.activations.silu):
        m = keras_resnets.create_model("cifar_resnet20", depth=8, activation=activation)
        assert np.isfinite(keras.ops.convert_to_numpy(m(random_images((32, 32, 3))))).all()


def test_generic_builder_any_layout():
    m = ResNet((1, 1, 1), (8, 16, 32), unit="bottleneck", stem="cifar", stem_width=8, input_shape=(16, 16, 2), classes=3)
    assert m.output.shape == (None, 3)
    assert m.get_layer("stage3_unit1_conv3").filters == 128


def test_input_tensor_from_another_layer_keeps_the_original_input():
    """Issue 16.8: as keras.applications, the model's input is the Input the tensor came from."""
    images = keras.Input((32, 32, 3))
    scaled = keras.layers.Rescaling(1 / 255.0, name="outer_scale")(images)
    backbone = keras_resnets.create_model("cifar_resnet20", input_tensor=scaled, classes=4)
    assert backbone.inputs[0] is images
    assert "outer_scale" in [layer.name for layer in backbone.layers]
    outer = keras.Model(images, keras.layers.Activation("linear", name="head")(backbone.output))
    x = random_images((32, 32, 3), batch=2)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outer(x)),
                               keras.ops.convert_to_numpy(backbone(x)), rtol=1e-5, atol=1e-5)


def test_input_tensor_must_be_a_keras_tensor():
    with pytest.raises(ValueError, match="input_tensor must be a Keras tensor"):
        keras_resnets.create_model("cifar_resnet20", input_tensor=np.zeros((1, 32, 32, 3), "float32"))
