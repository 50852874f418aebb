"""Receptive-field arithmetic: the context module's figures, VGG-16 and ResNet-50's known values."""
import keras
import pytest

import keras_resnets
from keras_resnets.layers.context import context_module
from keras_resnets.models.receptive_field import format_receptive_fields, receptive_fields


def test_basic_context_module_receptive_fields():
    inputs = keras.Input((64, 64, 3))
    rows = receptive_fields(keras.Model(inputs, context_module(inputs)))
    assert [r.rf for r in rows if r.kernel == 3] == [3, 5, 9, 17, 33, 65, 67]
    assert rows[-1].kernel == 1 and rows[-1].rf == 67
    assert all(r.jump == 1 for r in rows)
    assert [r.effective_stride for r in rows][:7] == [1, 1, 2, 4, 8, 16, 1]


def test_vgg16_receptive_fields():
    rows = {r.layer: r for r in receptive_fields(keras.applications.VGG16(weights=None, include_top=False))}
    assert (rows["block5_conv3"].rf, rows["block5_conv3"].jump) == (196, 16)
    assert (rows["block5_pool"].rf, rows["block5_pool"].jump) == (212, 32)


def test_resnet50_receptive_field_and_stride():
    rows = receptive_fields(keras_resnets.create_model("resnet50", input_shape=(64, 64, 3)))
    assert rows[-1].layer == "avg_pool" and rows[-1].kernel == 0
    assert (rows[-2].rf, rows[-2].jump) == (483, 32)


def test_dilation_keeps_the_jump_and_grows_the_effective_stride():
    plain = receptive_fields(keras_resnets.create_model("resnet18", input_shape=(64, 64, 3), include_top=False))
    dilated = receptive_fields(keras_resnets.create_model("resnet18", input_shape=(64, 64, 3), include_top=False,
                                                          output_stride=8))
    assert plain[-1].jump == 32 and dilated[-1].jump == 8
    assert max(r.effective_stride for r in dilated) == 32  # dilation 4 at jump 8
    assert dilated[-1].rf == plain[-1].rf  # the same field of view at four times the resolution


def test_frontend_reaches_one_eighth_and_upsampling_restores_the_input_grid():
    model = keras_resnets.create_model("dilation8_context", input_shape=(64, 64, 3), classes=3, fc_width=16)
    rows = receptive_fields(model)
    by_name = {r.layer: r for r in rows}
    assert by_name["fc6"].jump == 8 and by_name["fc6"].dilation == 4
    assert by_name["context_conv7"].rf - by_name["scores"].rf == 66 * 8  # the module's 67 at jump 8
    assert rows[-1].layer == "upsample" and rows[-1].jump == 1


def test_format_has_a_header_and_a_line_per_row():
    inputs = keras.Input((16, 16, 2))
    rows = receptive_fields(keras.Model(inputs, context_module(inputs)))
    table = format_receptive_fields(rows).splitlines()
    assert table[0].split() == ["layer", "kernel", "stride", "dilation", "rf", "jump", "eff.", "stride"]
    assert len(table) == len(rows) + 1
    assert table[7].split()[:5] == ["context_conv7", "3", "1", "1", "67"]


@pytest.mark.parametrize("name", ["densenet121", "cifar_densenet_bc100"])
def test_densenet_receptive_fields_grow_through_concatenations(name):
    shape = (32, 32, 3)
    rows = receptive_fields(keras_resnets.create_model(name, input_shape=shape))
    assert rows[-1].kernel == 0
    assert rows[-2].rf > rows[0].rf and rows[-2].jump == (32 if name == "densenet121" else 4)
