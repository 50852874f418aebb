"""Segmentation models and the mean-IoU metric (model code: both backends)."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.metrics import MeanIoU
from keras_resnets.models.segmentation import SegmentationNet

SHAPE = (64, 64, 3)
SMALL_RESNET = {"stage_widths": (8, 16, 32, 64)}


def small_seg(**kwargs):
    return keras_resnets.create_model("dilated_resnet18_seg", input_shape=SHAPE, classes=3,
                                      backbone_kwargs=SMALL_RESNET, **kwargs)


@pytest.mark.parametrize("context", ["basic", "large", None])
@pytest.mark.parametrize("output_stride", [8, 16, 32])
def test_per_pixel_logits_at_input_size(context, output_stride):
    model = small_seg(context=context, output_stride=output_stride)
    assert model.output_shape == (None, 64, 64, 3)
    assert model.get_layer("scores").output.shape[1] == 64 // output_stride
    assert any(layer.name.startswith("context_") for layer in model.layers) == (context is not None)
    images = np.random.default_rng(0).normal(size=(2, *SHAPE)).astype("float32")
    assert model(images).shape == (2, 64, 64, 3)


def test_named_resnet50_model_with_classes_stride_and_context():
    model = keras_resnets.create_model("dilated_resnet50_seg", classes=21, output_stride=8, context="large",
                                       input_shape=SHAPE)
    assert model.output_shape == (None, 64, 64, 21)
    assert model.get_layer("stage4_unit3_conv2").dilation_rate == (4, 4)
    assert model.get_layer("context_conv6").filters == 32 * 21


def test_frontend_is_vgg16_with_two_pools_removed_and_dilations_2_and_4():
    model = keras_resnets.create_model("dilation8_frontend", input_shape=SHAPE, classes=4, fc_width=32)
    names = {layer.name for layer in model.layers}
    assert {"block1_pool", "block2_pool", "block3_pool"} <= names
    assert not {"block4_pool", "block5_pool"} & names
    assert model.get_layer("block4_conv1").dilation_rate == (1, 1)
    assert model.get_layer("block5_conv1").dilation_rate == (2, 2)
    assert model.get_layer("fc6").dilation_rate == (4, 4) and model.get_layer("fc6").kernel_size == (7, 7)
    assert model.get_layer("scores").output.shape[1:3] == (8, 8)
    assert model.output_shape == (None, 64, 64, 4)
    assert not any(layer.name.startswith("context_") for layer in model.layers)


def test_frontend_has_vgg16_convolution_weights():
    ours = keras_resnets.create_model("dilation8_frontend", input_shape=SHAPE, include_top=False, fc_width=32)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=SHAPE)
    ours_convs = [tuple(w.shape) for layer in ours.layers if layer.name.startswith("block") for w in layer.weights]
    assert ours_convs == [tuple(w.shape) for w in vgg.weights]


def test_context_module_is_the_identity_inside_the_model():
    model = small_seg(context="basic")
    scores = keras.Model(model.input, model.get_layer("scores").output)
    context = keras.Model(model.input, model.get_layer("context_conv8").output)
    images = np.random.default_rng(0).normal(size=(1, *SHAPE)).astype("float32")
    s = keras.ops.convert_to_numpy(scores(images))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(context(images)), np.maximum(s, 0), atol=1e-6)


def test_round_trip_through_keras_file(tmp_path):
    model = small_seg(context="large", context_batch_norm=True)
    path = str(tmp_path / "seg.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(1).normal(size=(1, *SHAPE)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(images)), keras.ops.convert_to_numpy(model(images)),
                               atol=1e-5)


def test_include_top_false_returns_backbone_features():
    model = small_seg(include_top=False, output_stride=16)
    assert model.output_shape == (None, 4, 4, 64)
    assert small_seg(include_top=False, pooling="avg").output_shape == (None, 64)


def test_minimum_input_size_builds_for_every_output_stride():
    size = SegmentationNet.min_input_size
    for output_stride in (8, 16, 32):
        model = keras_resnets.create_model("dilated_resnet18_seg", input_shape=(size, size, 3), classes=2,
                                           output_stride=output_stride, backbone_kwargs=SMALL_RESNET)
        assert model.output_shape == (None, size, size, 2)


@pytest.mark.parametrize("kwargs, message", [
    (dict(output_stride=4), "output_stride must be one of 8, 16, 32; got 4"),
    (dict(context="huge"), "unknown context 'huge'; allowed: 'basic', 'large' or None"),
    (dict(input_shape=(60, 64, 3)), "input height 60 cannot be kept at output_stride=8; .* multiples of 8"),
    (dict(input_shape=(64, 48, 3), output_stride=32), "input width 48 cannot be kept at output_stride=32"),
    (dict(input_shape=(None, None, 3)), "input height None cannot be kept"),
    (dict(backbone="densenet121"), "backbone 'densenet121' cannot be dilated"),
    (dict(context_layers=3), "context_layers must be an integer >= 4"),
])
def test_bad_arguments(kwargs, message):
    arguments = {"input_shape": SHAPE, "backbone_kwargs": SMALL_RESNET, **kwargs}
    if kwargs.get("backbone") == "densenet121":
        arguments.pop("backbone_kwargs")
    with pytest.raises(ValueError, match=message):
        keras_resnets.create_model("dilated_resnet18_seg", **arguments)


# --- mean IoU ------------------------------------------------------------------------------------
def one_hot_logits(labels, classes):
    return np.eye(classes, dtype="float32")[labels]


def test_mean_iou_matches_a_hand_computed_confusion_matrix():
    y_true = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
    y_pred = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
    metric = MeanIoU(3)
    metric.update_state(y_true, one_hot_logits(y_pred, 3))
    # class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 2, FP 1, FN 1 -> 1/2; class 2: TP 1, FP 1, FN 1 -> 1/3
    np.testing.assert_allclose(metric.per_class_iou(), [1 / 3, 1 / 2, 1 / 3], rtol=1e-6)
    np.testing.assert_allclose(float(metric.result()), (1 / 3 + 1 / 2 + 1 / 3) / 3, rtol=1e-6)


def test_mean_iou_ignores_the_ignore_label_and_absent_classes():
    metric = MeanIoU(4, ignore_label=255)
    y_true = np.array([[[1], [255]], [[1], [0]]])  # (batch, H, W, 1) labels
    metric.update_state(y_true, one_hot_logits(np.array([[1, 3], [1, 0]]), 4))
    assert float(metric.result()) == pytest.approx(1.0)
    iou = metric.per_class_iou()
    assert np.isnan(iou[2]) and np.isnan(iou[3])  # the prediction at the ignored pixel does not count


def test_mean_iou_accumulates_and_resets():
    metric = MeanIoU(2, from_logits=False)
    metric.update_state(np.array([[0, 1]]), np.array([[0, 1]]))
    metric.update_state(np.array([[0, 1]]), np.array([[1, 1]]))
    np.testing.assert_allclose(metric.per_class_iou(), [1 / 2, 2 / 3], rtol=1e-6)
    metric.reset_state()
    assert float(metric.result()) == 0.0


def test_mean_iou_sample_weight_and_config():
    metric = MeanIoU(2, from_logits=False)
    metric.update_state(np.array([[0, 1]]), np.array([[0, 0]]), sample_weight=np.array([[1.0, 0.0]]))
    assert float(metric.result()) == pytest.approx(1.0)
    clone = MeanIoU.from_config(metric.get_config())
    assert (clone.num_classes, clone.ignore_label, clone.from_logits) == (2, 255, False)
    with pytest.raises(ValueError, match="num_classes must be a positive integer, got 0"):
        MeanIoU(0)
