"""load_dataset: the embedded digits, normalisation, determinism, folders and clear errors."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def digits():
    from keras_resnets.data import load_dataset

    return load_dataset("digits", batch_size=100, image_size=(16, 16), augment="crop", seed=1)


def test_digits_metadata_and_splits(digits):
    info = digits.info
    assert info.num_classes == 10 and info.image_shape == (16, 16, 1)
    assert info.num_train + info.num_validation + info.num_test == 1797
    assert 0 < info.mean[0] < 255 and info.std[0] > 0
    config = info.to_config()
    assert config["input_shape"] == [16, 16, 1] and len(config["normalization"]["mean"]) == 1


def test_train_pipeline_is_normalised_and_covers_each_epoch_once(digits):
    labels = []
    images = []
    for x, y in digits.train(epochs=1):
        images.append(x.numpy())
        labels.append(y.numpy())
    labels = np.concatenate(labels)
    assert len(labels) == digits.info.num_train
    assert sum(len(b) for b in images) == digits.info.num_train
    assert images[0].dtype == np.float32 and labels.dtype == np.int32
    assert sorted(np.bincount(labels)) == sorted(np.bincount(digits._train_labels))
    unaugmented = (digits._train_images.astype(np.float32) - digits.info.mean) / digits.info.std
    assert abs(unaugmented.mean()) < 1e-3 and abs(unaugmented.std() - 1) < 1e-3


def test_epoch_e_is_the_same_whether_started_at_0_or_resumed_at_e(digits):
    full = [x.numpy() for x, _ in digits.train(epochs=2)]
    resumed = [x.numpy() for x, _ in digits.train(epochs=2, initial_epoch=1)]
    steps = digits.steps_per_epoch
    assert len(full) == 2 * steps and len(resumed) == steps
    for a, b in zip(full[steps:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0], full[steps])  # epochs differ in order and augmentation


def test_static_expansion_grows_train_and_disables_online_augmentation():
    from keras_resnets.data import load_dataset

    data = load_dataset("digits", batch_size=256, image_size=(8, 8), augment="crop_flip", expand=1)
    plain = load_dataset("digits", batch_size=256, image_size=(8, 8))
    assert data.info.num_train == 2 * plain.info.num_train
    assert data.augment == "none"


def test_image_folder_with_validation_split(tmp_path):
    from PIL import Image

    from keras_resnets.data import load_dataset

    rng = np.random.default_rng(0)
    for name, level in (("cats", 30), ("dogs", 220)):
        os.makedirs(tmp_path / name)
        for i in range(10):
            pixels = np.clip(rng.normal(level, 10, size=(20, 24, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    data = load_dataset("folder", data_dir=str(tmp_path), image_size=(8, 8), validation_split=0.2, batch_size=4)
    assert data.info.class_names == ("cats", "dogs")
    assert data.info.num_train == 16 and data.info.num_validation == 4
    x, y = next(iter(data.validation))
    assert x.shape[1:] == (8, 8, 3)


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(name="digits", augment="mixup"), r"'mixup'.*allowed: none, crop, crop_flip"),
        (dict(name="digits", batch_size=0), r"batch_size must be a positive integer; got 0"),
        (dict(name="digits", batch_size=-8), r"got -8"),
        (dict(name="digits", channels=2), r"channels must be 1 or 3; got 2"),
        (dict(name="digits", expand=1), r"expand > 0 needs an augmentation policy"),
        (dict(name="no_such_dataset_xyz"), r"unknown dataset 'no_such_dataset_xyz'; allowed: digits, textured_digits, folder, cifar10"),
    ],
)
def test_bad_arguments_raise_value_errors_naming_the_value(kwargs, pattern):
    from keras_resnets.data import load_dataset

    with pytest.raises(ValueError, match=pattern):
        load_dataset(**kwargs)


def test_missing_tfds_dataset_says_where_to_put_the_files(tmp_path):
    from keras_resnets.data import DatasetUnavailableError, load_dataset

    with pytest.raises(DatasetUnavailableError) as err:
        load_dataset("cifar10", data_dir=str(tmp_path))
    message = str(err.value)
    assert str(tmp_path) in message and "tfds build cifar10" in message and "manual" in message
    assert "\n" not in message


def _train_on_folder(tmp_path, folder, *extra):
    from keras_resnets.cli import main

    return main(["train", "--dataset", "folder", "--data-dir", str(folder), "--image-size", "8",
                 "--model-arg", "depth=8", "--epochs", "1", "--runs-dir", str(tmp_path / "runs"), "--run-name", "x",
                 *extra])


def test_a_folder_whose_every_image_is_unreadable_is_named_in_one_line(tmp_path, capsys):
    for name in ("cats", "dogs"):
        os.makedirs(tmp_path / "broken" / name)
        for i in range(3):
            (tmp_path / "broken" / name / f"{i}.png").write_bytes(b"not an image")
    code = _train_on_folder(tmp_path, tmp_path / "broken")
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 + 6  # a warning per file, then the error
    assert lines[-1] == (f"keras-resnets train: error: image folder '{tmp_path / 'broken'}': none of its 6 image "
                         f"files could be read (each was skipped as unreadable or corrupt)")
    assert not (tmp_path / "runs" / "x").exists()


def test_dataset_option_cache_takes_only_true_or_false(tmp_path, capsys):
    from PIL import Image

    for name in ("cats", "dogs"):
        os.makedirs(tmp_path / "images" / name)
        for i in range(5):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / "images" / name / f"{i}.png")
    code = _train_on_folder(tmp_path, tmp_path / "images", "--dataset-arg", "cache=maybe")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "keras-resnets train: error: cache must be true or false; got 'maybe'"
    assert not (tmp_path / "runs").exists() or not os.listdir(tmp_path / "runs")
