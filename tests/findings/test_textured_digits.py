"""The synthetic ``textured_digits`` set: deterministic, balanced, same loader API as the other datasets."""
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only


def test_textured_digits_is_deterministic_and_loads_by_name():
    from keras_resnets.data import list_datasets, load_dataset
    from keras_resnets.data.textured_digits import CLASSES, render

    assert "textured_digits" in list_datasets()
    data = load_dataset("textured_digits", image_size=(12, 12), batch_size=64, seed=3)
    assert data.info.image_shape == (12, 12, 3) and data.info.num_classes == len(CLASSES) == 10
    assert (data.info.num_train, data.info.num_validation, data.info.num_test) == (5172, 576, 1440)
    images, labels = next(iter(data.train(1)))
    assert images.shape == (64, 12, 12, 3) and labels.dtype == "int32"
    digits = np.random.default_rng(0).uniform(0, 16, (3, 8, 8))
    first = render(digits, (12, 12), np.random.default_rng(7))
    assert np.array_equal(first, render(digits, (12, 12), np.random.default_rng(7)))
    assert not np.array_equal(first, render(digits, (12, 12), np.random.default_rng(8)))


def test_textured_digits_rejects_bad_arguments():
    from keras_resnets.data.textured_digits import load_textured_digits

    with pytest.raises(ValueError, match="square image_size.*got \\(16, 8\\)"):
        load_textured_digits((16, 8))
    with pytest.raises(ValueError, match="copies must be a positive integer; got 0"):
        load_textured_digits((8, 8), copies=0)


def test_textured_digits_refuse_streaming_like_the_digits():
    """Both generated sets live in memory: streaming=True or an ImageNet crop policy is refused, not ignored."""
    import pytest

    from keras_resnets.data import load_dataset

    with pytest.raises(ValueError, match=r"textured_digits are held in memory.*streaming=True"):
        load_dataset("textured_digits", streaming=True)
    with pytest.raises(ValueError, match=r"textured_digits are held in memory.*augment='imagenet_scale'"):
        load_dataset("textured_digits", augment="imagenet_scale")
