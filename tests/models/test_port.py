"""keras.applications ResNets port to keras_resnets with identical predictions."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models.port import IMAGENET_PORTS

from .helpers import randomise_statistics


APPLICATIONS = ["ResNet50", "ResNet101", "ResNet152", "ResNet50V2", "ResNet101V2", "ResNet152V2"]


@pytest.mark.parametrize("application", APPLICATIONS)
def test_port_gives_same_predictions(application):
    source = getattr(keras.applications, application)(weights=None, input_shape=(64, 64, 3), classes=7)
    randomise_statistics(source)
    ours = keras_resnets.from_keras_applications(source)
    x = np.random.default_rng(1).normal(size=(2, 64, 64, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(source(x, training=False))
    got = keras.ops.convert_to_numpy(ours(x, training=False))
    assert np.abs(got - expected).max() <= 1e-4
    # Our convolutions before BN carry no bias: fewer parameters, same function.
    assert ours.count_params() < source.count_params()


def test_port_without_top_keeps_pooling():
    source = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg", input_shape=(32, 32, 3))
    ours = keras_resnets.from_keras_applications(source)
    assert ours.output.shape == (None, 2048)
    x = np.random.default_rng(2).normal(size=(1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), keras.ops.convert_to_numpy(source(x)), atol=1e-4)


def test_imagenet_weights_are_offered_for_ported_models():
    assert {"resnet50", "resnet101", "resnet152", "resnet50_v2", "resnet101_v2", "resnet152_v2"} <= set(IMAGENET_PORTS)


def test_unported_model_is_a_clear_error():
    other = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)], name="mlp")
    with pytest.raises(ValueError, match="no keras_resnets port for model 'mlp'"):
        keras_resnets.from_keras_applications(other)


def test_imagenet_weights_refuse_architecture_changes():
    with pytest.raises(ValueError, match="fixes the architecture"):
        keras_resnets.create_model("resnet50", weights="imagenet", activation="tanh")
    with pytest.raises(ValueError, match="no ImageNet weights for 'cifar_resnet20'"):
        keras_resnets.create_model("cifar_resnet20", weights="imagenet")
