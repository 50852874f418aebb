"""Segmentation data: the generated shapes set, its pipelines, Oxford-IIIT Pet's message; a short training run."""
import time

import numpy as np
import pytest

from keras_resnets.data import registry
from keras_resnets.data.segmentation import SHAPE_CLASSES, load_oxford_pets, make_shapes
from keras_resnets.data.sources import DatasetUnavailableError

pytestmark = pytest.mark.tf_only

# The short training run: 8 epochs of 512 shapes images on a narrow network (widths 8..64) reach a
# validation mIoU of 0.37-0.40 on seeds 0, 1 and 2 (background everywhere scores about 0.21).
EPOCHS = 8
MIOU_BAR = 0.33
STAGE_WIDTHS = (8, 16, 32, 64)


def test_shapes_are_deterministic_and_have_exact_masks():
    images, masks = make_shapes(16, image_size=32, seed=3)
    again, masks_again = make_shapes(16, image_size=32, seed=3)
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.uint8
    assert masks.shape == (16, 32, 32) and masks.dtype == np.uint8
    np.testing.assert_array_equal(images, again)
    np.testing.assert_array_equal(masks, masks_again)
    assert set(np.unique(masks)) <= set(range(len(SHAPE_CLASSES)))
    assert all((m > 0).any() for m in masks)  # every image has a shape
    assert set(np.unique(make_shapes(64, image_size=32, seed=0)[1])) == {0, 1, 2, 3}


def test_shape_pixels_are_flat_coloured_and_the_background_is_textured():
    images, masks = make_shapes(8, image_size=64, max_shapes=1, seed=1)
    for image, mask in zip(images.astype("float32"), masks):
        inside, outside = image[mask > 0], image[mask == 0]
        assert inside.std(axis=0).max() < 10  # one colour plus slight noise
        assert outside.std(axis=0).max() > 5  # noise, stripes, checkerboard or gradient


def test_shapes_pipeline_is_normalised_with_int32_masks():
    data = registry.load("shapes", {"num_train": 32, "num_validation": 8}, image_size=(32, 32), batch_size=8)
    validation, info = data.validation, data.info
    images, masks = next(iter(data.train(1)))
    assert images.shape == (8, 32, 32, 3) and masks.shape == (8, 32, 32)
    assert images.dtype.name == "float32" and masks.dtype.name == "int32"
    assert info.num_classes == 4 and info.class_names == SHAPE_CLASSES
    assert abs(float(np.mean(images))) < 0.5
    assert sum(int(b[0].shape[0]) for b in validation) == 8


@pytest.mark.parametrize("kwargs, message", [(dict(num_images=0), "num_images"), (dict(image_size=8), "image_size"),
                                             (dict(max_shapes=0), "max_shapes")])
def test_bad_shapes_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_shapes(**{"num_images": 2, **kwargs})


def test_oxford_pets_absent_gives_a_clear_message(tmp_path):
    with pytest.raises(DatasetUnavailableError, match=r"'oxford_iiit_pet' is not prepared in data dir .*tfds build"):
        load_oxford_pets(data_dir=str(tmp_path))


def test_segmentation_model_learns_the_shapes():
    import keras

    import keras_resnets
    from keras_resnets.metrics import MeanIoU

    start = time.time()
    keras.utils.set_random_seed(0)
    data = registry.load("shapes", {"num_train": 512, "num_validation": 64}, image_size=(64, 64), batch_size=16,
                         seed=0)
    validation, info = data.validation, data.info
    model = keras_resnets.create_model("dilated_resnet18_seg", input_shape=info.image_shape,
                                       classes=info.num_classes, context=None,
                                       backbone_kwargs={"stage_widths": STAGE_WIDTHS})
    model.compile(keras.optimizers.Adam(5e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                  metrics=[MeanIoU(info.num_classes)])
    model.fit(data.train(EPOCHS), epochs=EPOCHS, steps_per_epoch=data.steps_per_epoch, shuffle=False, verbose=0)
    metric = MeanIoU(info.num_classes)
    for images, masks in validation:
        metric.update_state(masks, model(images, training=False))
    assert float(metric.result()) >= MIOU_BAR, (metric.per_class_iou(), time.time() - start)
