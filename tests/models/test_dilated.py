"""Dilated ResNets: every output stride keeps its resolution and the weights of the undilated network."""
import keras
import numpy as np
import pytest

import keras_resnets

SIZE = 64


def feature_shapes(name, **kwargs):
    model = keras_resnets.create_model(name, features_only=True, **kwargs)
    return {k: tuple(v.shape[1:3]) for k, v in model.output.items()}, model


def weight_shapes(model):
    return [tuple(w.shape) for w in model.weights]


@pytest.mark.parametrize("name, output_stride", [("resnet18", 8), ("resnet18", 16), ("resnet18", 32), ("resnet50", 8),
                                                  ("resnet50_v2", 8), ("resnet50_v2", 16)])
def test_imagenet_resnets_keep_the_requested_resolution(name, output_stride):
    shapes, dilated = feature_shapes(name, input_shape=(SIZE, SIZE, 3), output_stride=output_stride)
    assert shapes["stage4"] == (SIZE // output_stride,) * 2
    assert shapes["stage2"] == (SIZE // 8,) * 2
    _, native = feature_shapes(name, input_shape=(SIZE, SIZE, 3))
    assert weight_shapes(dilated) == weight_shapes(native)


def test_stride_8_dilates_stage3_by_2_and_stage4_by_4():
    model = keras_resnets.create_model("resnet50", input_shape=(SIZE, SIZE, 3), output_stride=8)
    # the first 3x3 of a newly dilated stage keeps the previous dilation (as in DeepLab / torchvision)
    assert model.get_layer("stage3_unit1_conv2").dilation_rate == (1, 1)
    assert model.get_layer("stage3_unit2_conv2").dilation_rate == (2, 2)
    assert model.get_layer("stage4_unit1_conv2").dilation_rate == (2, 2)
    assert model.get_layer("stage4_unit3_conv2").dilation_rate == (4, 4)
    assert all(max(layer.strides) == 1 for layer in model.layers
               if isinstance(layer, keras.layers.Conv2D) and layer.name.startswith(("stage3", "stage4")))


def test_multi_grid_multiplies_the_last_stage_dilation():
    model = keras_resnets.create_model("resnet50", input_shape=(SIZE, SIZE, 3), output_stride=16,
                                       multi_grid=(1, 2, 4))
    assert [model.get_layer(f"stage4_unit{u}_conv2").dilation_rate[0] for u in (1, 2, 3)] == [2, 4, 8]


def test_stride_8_resnet50_has_unchanged_parameter_count_and_takes_its_weights(tmp_path):
    native = keras_resnets.create_model("resnet50", input_shape=(SIZE, SIZE, 3), classes=5)
    dilated = keras_resnets.create_model("resnet50", input_shape=(SIZE, SIZE, 3), classes=5, output_stride=8)
    assert dilated.count_params() == native.count_params()
    path = str(tmp_path / "native.weights.h5")
    native.save_weights(path)
    seeded = keras_resnets.create_model("resnet50", input_shape=(SIZE, SIZE, 3), classes=5, output_stride=8,
                                        weights=path)
    for a, b in zip(native.weights, seeded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


@pytest.mark.parametrize("name", ["cifar_resnet20", "cifar_plain20"])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_cifar_resnets_accept_every_output_stride(name, output_stride):
    # CIFAR nets reach only 1/4 natively: 8, 16 and 32 leave them unchanged
    shapes, model = feature_shapes(name, input_shape=(32, 32, 3), output_stride=output_stride)
    assert shapes["stage3"] == (8, 8)
    _, native = feature_shapes(name, input_shape=(32, 32, 3))
    assert weight_shapes(model) == weight_shapes(native)


def test_every_resnet_in_the_registry_takes_output_stride():
    from keras_resnets.models.registry import get_entry

    resnets = [n for n in keras_resnets.list_models() if get_entry(n).family in
               ("resnet", "resnet_v2", "plain", "cifar_resnet", "preact_resnet")]
    assert resnets
    assert all("output_stride" in get_entry(n).keywords() for n in resnets)


@pytest.mark.parametrize("bad", [4, 12, 64, 0, "8"])
def test_bad_output_stride_is_named(bad):
    with pytest.raises(ValueError, match=f"output_stride must be None or one of 8, 16, 32; got {bad!r}"):
        keras_resnets.create_model("resnet18", output_stride=bad)


@pytest.mark.parametrize("bad", [(1, 0), (-1,)])
def test_non_positive_multi_grid_is_named(bad):
    with pytest.raises(ValueError, match="multi_grid must be positive integers"):
        keras_resnets.create_model("resnet18", output_stride=8, multi_grid=bad)


@pytest.mark.parametrize("bad", [2, "124", 2.0])
def test_multi_grid_that_is_not_a_sequence_is_named(bad):
    """Issue 16.4: ``multi_grid=2`` ends in one line, not ``TypeError: 'int' object is not iterable``."""
    with pytest.raises(ValueError, match=r"multi_grid must be a sequence of positive integers such as \(1, 2, 4\)"):
        keras_resnets.create_model("resnet18", output_stride=8, multi_grid=bad)


def test_input_smaller_than_the_stride_is_rejected():
    with pytest.raises(ValueError, match="at least 8"):
        keras_resnets.create_model("resnet18", input_shape=(6, 6, 3), output_stride=8)
