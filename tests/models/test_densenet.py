"""DenseNet: the paper's parameter counts, the builder's keywords and errors, the keras.applications port."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models.densenet import DenseNet, cifar_block_depth
from keras_resnets.models.port import from_keras_applications

from .helpers import randomise_statistics


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


BACKEND_INDEPENDENT = pytest.mark.backend_independent  # counts and ports of big nets: checked on TensorFlow


@BACKEND_INDEPENDENT
def test_densenet121_trainable_params_match_keras_applications():
    model = keras_resnets.create_model("densenet121")
    assert trainable_params(model) == 7_978_856
    assert model.count_params() == keras.applications.DenseNet121(weights=None).count_params()


# Huang et al. 2017, Table 2 (millions of parameters, printed with one decimal).
PAPER_PARAMS = {
    "cifar_densenet40": 1.0,
    "cifar_densenet100": 7.0,
    "cifar_densenet100_k24": 27.2,
    "cifar_densenet_bc100": 0.8,
}
LARGE_PAPER_PARAMS = {"cifar_densenet_bc250": 15.3, "cifar_densenet_bc190": 25.6}


def published_count(name: str):
    """``(count function, published millions, decimal digits)`` of the CIFAR DenseNet ``name``, or None.

    Checked in test_registry on the model that test builds anyway (the 15M- and 25M-parameter
    DenseNet-BCs took about a minute each to build a second time only to be counted).
    """
    params = {**PAPER_PARAMS, **LARGE_PAPER_PARAMS}
    return (trainable_params, params[name], 1) if name in params else None


def test_every_published_count_names_a_registered_model():
    assert {*PAPER_PARAMS, *LARGE_PAPER_PARAMS} <= set(keras_resnets.list_models())


def test_dense_block_concatenates_growth_rate_channels_per_layer():
    model = DenseNet((2, 3), growth_rate=5, compression=0.5, bottleneck=True, stem="cifar", stem_width=8,
                     input_shape=(16, 16, 3), features_only=True)
    shapes = {k: tuple(v.shape[1:]) for k, v in model.output.items()}
    assert shapes["stem"] == (16, 16, 8)
    assert shapes["block1"] == (16, 16, 8 + 2 * 5)
    # transition: floor(0.5 * 18) = 9 channels at half resolution, then 3 layers of 5.
    assert shapes["block2"] == (8, 8, 9 + 3 * 5)
    # every layer of a block reads all earlier maps: the last layer's 1x1 conv sees 9 + 2*5 channels
    assert model.get_layer("block2_layer3_conv1").kernel.shape == (1, 1, 19, 20)


def test_plain_densenet_has_no_bottleneck_and_keeps_channels():
    model = DenseNet((2, 2), growth_rate=4, compression=1.0, bottleneck=False, stem="cifar",
                     input_shape=(8, 8, 3), classes=3)
    names = {layer.name for layer in model.layers}
    assert "block1_layer1_conv1" not in names
    assert model.get_layer("transition1_conv").kernel.shape == (1, 1, 16 + 8, 16 + 8)
    assert model(np.zeros((2, 8, 8, 3), "float32")).shape == (2, 3)


@pytest.mark.parametrize("depth, bottleneck, n", [(40, False, 12), (100, False, 32), (100, True, 16),
                                                  (250, True, 41), (190, True, 31)])
def test_cifar_block_depth(depth, bottleneck, n):
    assert cifar_block_depth(depth, bottleneck) == n


@pytest.mark.parametrize("kwargs, message", [
    (dict(growth_rate=0), "growth_rate must be a positive integer, got 0"),
    (dict(compression=0.0), "compression must be in (0, 1]"),
    (dict(compression=1.5), "got 1.5"),
    (dict(block_depths=(2, 0)), "block_depths must be positive integers"),
    (dict(stem="tiny"), "unknown stem 'tiny'"),
    (dict(input_shape=(16, 16, 3)), "at least 32"),
])
def test_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        DenseNet(**{"block_depths": (1, 1, 1, 1), **kwargs})


def test_cifar_depth_of_wrong_form_raises():
    with pytest.raises(ValueError, match=r"depth 41 is not of the form 3n\+4"):
        keras_resnets.create_model("cifar_densenet40", depth=41)


def _check_port(application, our_name):
    source = application(weights=None, input_shape=(64, 64, 3), classes=7, classifier_activation=None)
    randomise_statistics(source)
    ported = from_keras_applications(source)
    assert ported.name == our_name
    images = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(source(images, training=False))
    got = keras.ops.convert_to_numpy(ported(images, training=False))
    assert np.max(np.abs(expected - got)) <= 1e-4
    assert np.std(expected) > 1e-2  # the comparison is not between constants


def test_port_densenet121_gives_equal_predictions():
    _check_port(keras.applications.DenseNet121, "densenet121")


@pytest.mark.slow
@BACKEND_INDEPENDENT
@pytest.mark.parametrize("application, our_name", [(keras.applications.DenseNet169, "densenet169"),
                                                   (keras.applications.DenseNet201, "densenet201")])
def test_port_densenet169_201_give_equal_predictions(application, our_name):
    _check_port(application, our_name)
