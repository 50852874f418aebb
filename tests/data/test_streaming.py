"""Streaming input (issue 13): image folders and TFDS splits decoded on the fly, corrupt files
(issue 16, defect 3), the ImageNet crops, sharding, cache and the automatic switch."""
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

UNREADABLE = "keras-resnets: warning: skipping unreadable image"


def write_jpeg_folder(root, per_class=12, classes=("cats", "dogs"), size=(40, 52), seed=0):
    """A generated JPEG folder: class c's images are noise around a grey level of its own."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c, name in enumerate(classes):
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for i in range(per_class):
            level = 40 + 170 * c
            pixels = np.clip(rng.normal(level, 25, size=(size[0] + i, size[1], 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(os.path.join(root, name, f"{i:03d}.jpg"), quality=90)
    return str(root)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_jpeg_folder(tmp_path_factory.mktemp("jpegs"))


def batches(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


@pytest.mark.parametrize("policy", ["imagenet_scale", "inception_crop", "crop_flip"])
def test_streaming_folder_is_deterministic_for_a_seed_and_resumes_exactly(folder, policy):
    from keras_resnets.data import load_dataset
    from keras_resnets.data.streaming import StreamingDatasets

    data = load_dataset("folder", data_dir=folder, batch_size=5, augment=policy, image_size=(24, 24),
                        validation_split=0.25, seed=3, streaming=True)
    assert isinstance(data, StreamingDatasets) and data._train_images is None  # no image arrays
    full = batches(data.train(epochs=2))
    again = batches(load_dataset("folder", data_dir=folder, batch_size=5, augment=policy, image_size=(24, 24),
                                 validation_split=0.25, seed=3, streaming=True).train(epochs=2))
    resumed = batches(data.train(epochs=2, initial_epoch=1))
    steps = data.steps_per_epoch
    assert len(full) == 2 * steps and len(resumed) == steps
    for (a, la), (b, lb) in zip(full, again):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    for (a, _), (b, _) in zip(full[steps:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(full[0][0], full[steps][0])  # epochs differ in order and crops
    other_seed = batches(load_dataset("folder", data_dir=folder, batch_size=5, augment=policy,
                                      image_size=(24, 24), validation_split=0.25, seed=4,
                                      streaming=True).train(epochs=1))
    assert not np.array_equal(full[0][0], other_seed[0][0])


def test_streaming_epoch_covers_every_training_file_once_normalised(folder):
    from keras_resnets.data import load_dataset

    data = load_dataset("folder", data_dir=folder, batch_size=4, augment="imagenet_scale", image_size=(24, 24),
                        validation_split=0.25, seed=0)  # "auto": ImageNet policies stream
    labels = np.concatenate([y for _, y in batches(data.train(epochs=1))])
    assert len(labels) == data.info.num_train == 18
    assert sorted(np.bincount(labels)) == [9, 9]
    x, y = next(iter(data.validation))
    assert x.shape[1:] == (24, 24, 3) and x.dtype == np.float32 and y.dtype == np.int32
    images = np.concatenate([x for x, _ in batches(data.validation)])
    assert abs(images.mean()) < 0.5 and 0.5 < images.std() < 1.5  # (pixels - mean) / std
    assert data.info.num_validation == data.info.num_test == 6


def test_auto_switch_keeps_small_folders_in_memory_and_streams_large_ones(folder, monkeypatch):
    from keras_resnets.data import Datasets, load_dataset, streaming

    small = load_dataset("folder", data_dir=folder, batch_size=4, image_size=(16, 16))
    assert type(small) is Datasets and small._train_images is not None
    monkeypatch.setattr(streaming, "STREAMING_THRESHOLD_BYTES", 1000)
    large = load_dataset("folder", data_dir=folder, batch_size=4, image_size=(16, 16))
    assert isinstance(large, streaming.StreamingDatasets)
    explicit = load_dataset("folder", data_dir=folder, batch_size=4, image_size=(16, 16), streaming=False)
    assert type(explicit) is Datasets


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        (dict(augment="imagenet_scale", streaming=False), r"augment='imagenet_scale' .* needs streaming"),
        (dict(streaming="yes"), r"streaming must be one of 'auto', True, False; got 'yes'"),
        (dict(augment="crop_flip", expand=1, streaming=True), r"expand=1 \(static expansion\) needs the images"),
        (dict(augment="inception_crop", image_size=(24, 32)), r"square crops; got image_size=\(24, 32\)"),
    ],
)
def test_bad_streaming_arguments_name_the_value(folder, kwargs, pattern):
    from keras_resnets.data import load_dataset

    with pytest.raises(ValueError, match=pattern):
        load_dataset("folder", data_dir=folder, batch_size=4, **kwargs)


def test_digits_refuse_streaming_and_imagenet_policies():
    from keras_resnets.data import load_dataset

    with pytest.raises(ValueError, match=r"digits are held in memory.*streaming=True"):
        load_dataset("digits", streaming=True)
    with pytest.raises(ValueError, match=r"augment='imagenet_scale'"):
        load_dataset("digits", augment="imagenet_scale")


@pytest.fixture()
def corrupt_folder(tmp_path):
    root = write_jpeg_folder(tmp_path / "photos", per_class=6)
    good = open(os.path.join(root, "cats", "000.jpg"), "rb").read()
    truncated = os.path.join(root, "cats", "zz_truncated.jpg")
    garbage = os.path.join(root, "dogs", "zz_not_an_image.jpg")
    corrupt_middle = os.path.join(root, "dogs", "zz_corrupt_middle.jpg")
    open(truncated, "wb").write(good[: len(good) // 3])
    open(garbage, "wb").write(b"this is not a JPEG")
    open(corrupt_middle, "wb").write(good[:600] + bytes(range(200)) + good[800:])
    return root, {truncated, garbage, corrupt_middle}


def skipped_files(stderr: str) -> set:
    names = set()
    for line in stderr.splitlines():
        if line.startswith(UNREADABLE):
            names.update(part.strip() for part in line[len(UNREADABLE):].split(","))
    return names


@pytest.mark.parametrize("streaming", [True, False], ids=["streaming", "in_memory"])
def test_corrupt_jpegs_are_skipped_with_a_warning_naming_each_file(corrupt_folder, capfd, streaming):
    """Issue 16, defect 3: no TensorFlow traceback; every unreadable file is named and left out."""
    from keras_resnets.data import load_dataset

    root, corrupt = corrupt_folder
    data = load_dataset("folder", data_dir=root, batch_size=4, image_size=(16, 16), validation_split=0.5,
                        seed=0, streaming=streaming, augment="crop_flip")
    train = batches(data.train(epochs=1))
    held_out = batches(data.validation)
    if streaming:  # the announced batch counts hold (places of skipped images refilled from the start)
        assert len(train) == data.steps_per_epoch and len(held_out) == -(-data.info.num_validation // 4)
    else:  # the 12 readable images, nothing else
        assert data.info.num_train + data.info.num_validation == 12
    assert all(np.isfinite(x).all() for x, _ in train + held_out)
    assert skipped_files(capfd.readouterr().err) == corrupt


def test_imagenet_scale_window_follows_the_paper():
    """Shorter side resized to S in [256, 480], a 224 crop: the window is 224 * short / S wide."""
    import tensorflow as tf

    from keras_resnets.data import imagenet

    sides = []
    for i in range(200):
        y, x, h, w = imagenet.scale_window(tf.constant([500, 375]), tf.constant([7, i])).numpy()
        assert h == w and 0 <= y <= 500 - h and 0 <= x <= 375 - w
        sides.append(h)
    scales = 224 * 375 / np.array(sides)
    assert scales.min() >= 255 and scales.max() <= 481
    assert scales.min() < 280 and scales.max() > 450  # the whole range is used


def test_inception_window_area_and_ratio_and_centre_window():
    import tensorflow as tf

    from keras_resnets.data import imagenet

    for i in range(100):
        y, x, h, w = imagenet.inception_window(tf.constant([300, 400]), tf.constant([1, i])).numpy()
        assert 0 <= y <= 300 - h and 0 <= x <= 400 - w
        assert 0.08 * 0.9 <= h * w / (300 * 400) <= 1.0
        assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1 or (h, w) == (300, 300)
    # the single centre crop: shorter side 256, central 224 => a 224/256 share of the shorter side
    assert imagenet.centre_window(tf.constant([256, 512])).numpy().tolist() == [16, 144, 224, 224]


def test_ten_crops_are_five_crops_and_their_mirrors():
    import tensorflow as tf

    from keras_resnets.data import imagenet

    image = tf.random.stateless_uniform([40, 60, 3], [0, 1], 0, 255)
    crops = imagenet.ten_crops(image, size=28, resize=32 * 224 / 28).numpy()
    assert crops.shape == (10, 28, 28, 3)
    np.testing.assert_allclose(crops[5:], crops[:5, :, ::-1], atol=1e-5)


def test_lighting_adds_a_per_image_colour_offset():
    import tensorflow as tf

    from keras_resnets.data import imagenet

    image = tf.fill([8, 8, 3], 128.0)
    shifted = imagenet.lighting(image, tf.constant([0, 5])).numpy()
    offset = shifted - 128.0
    assert np.ptp(offset.reshape(-1, 3), axis=0).max() < 1e-4  # one offset for the whole image
    assert 0 < np.abs(offset).max() < 40


def test_cache_holds_encoded_files_and_gives_the_same_batches(folder):
    from keras_resnets.data import load_dataset

    kwargs = dict(data_dir=folder, batch_size=4, augment="inception_crop", image_size=(16, 16), seed=2)
    cached = load_dataset("folder", cache=True, **kwargs)
    assert cached._train_split.cache is not None and len(cached._train_split.cache) == cached.info.num_train
    plain = load_dataset("folder", **kwargs)
    for (a, la), (b, lb) in zip(batches(cached.train(epochs=1)), batches(plain.train(epochs=1))):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(la, lb)
    assert len(batches(cached.validation)) == len(batches(cached.validation))  # second pass from the cache


def test_shards_are_disjoint_equal_and_together_cover_the_files(folder):
    from keras_resnets.data import load_dataset

    data = load_dataset("folder", data_dir=folder, batch_size=4, augment="imagenet_scale", image_size=(16, 16),
                        validation_split=0.25, seed=0)
    parts = [data.shard(2, index) for index in range(2)]
    files = [set(part._train_split.files) for part in parts]
    assert not files[0] & files[1]
    assert files[0] | files[1] == set(data._train_split.files)
    for part in parts:
        assert part.batch_size == 2 and part.steps_per_epoch == 9 // 2
        assert [len(y) for _, y in batches(part.train(epochs=1))] == [2] * part.steps_per_epoch
    with pytest.raises(ValueError, match="batch_size 4 is not divisible by 3 shards"):
        data.shard(3, 0)


def test_tfds_streams_offline_under_tfds_mock_data():
    """TFDS's own offline harness: ensure_prepared lets it through, both paths read it.

    TensorFlow's global seed is 0 here, as after ``train(seed=0)``: the per-epoch shuffle seeds
    must still work (a tensor seed fails then)."""
    import keras
    import tensorflow_datasets as tfds

    keras.utils.set_random_seed(0)

    from keras_resnets.data import Datasets, load_dataset
    from keras_resnets.data.streaming import StreamingDatasets

    with tfds.testing.mock_data(num_examples=64):
        stream = load_dataset("cifar10", data_dir="/nonexistent/tfds", batch_size=16, augment="crop_flip",
                              streaming=True, seed=1)
        assert isinstance(stream, StreamingDatasets)
        assert stream.info.num_classes == 10 and stream.info.image_shape == (32, 32, 3)
        first = batches(stream.train(epochs=2))
        resumed = batches(stream.train(epochs=2, initial_epoch=1))
        steps = stream.steps_per_epoch
        assert len(first) == 2 * steps
        for (a, _), (b, _) in zip(first[steps:], resumed):
            np.testing.assert_array_equal(a, b)
        imagenet_style = load_dataset("cifar10", data_dir="/nonexistent/tfds", batch_size=16,
                                      augment="inception_crop", image_size=(24, 24))
        assert next(iter(imagenet_style.train(epochs=1)))[0].shape == (16, 24, 24, 3)
        in_memory = load_dataset("cifar10", data_dir="/nonexistent/tfds", batch_size=16, streaming=False,
                                 validation_split=0.25)
        assert type(in_memory) is Datasets and in_memory.info.num_train > 0


def test_train_cli_on_a_folder_with_corrupt_jpegs_finishes_and_names_them(corrupt_folder, tmp_path, capfd):
    """Issue 16, defect 3, through `keras-resnets train` (a small folder: the in-memory path)."""
    from keras_resnets.cli import main

    root, corrupt = corrupt_folder
    code = main(["train", "--model", "cifar_resnet20", "--model-arg", "depth=8", "--dataset", "folder",
                 "--data-dir", root, "--image-size", "8", "--epochs", "1", "--batch-size", "4",
                 "--validation-split", "0.34", "--runs-dir", str(tmp_path / "runs"), "--quiet"])
    captured = capfd.readouterr()
    assert code == 0, captured.err[-2000:]
    assert "Traceback" not in captured.err
    assert skipped_files(captured.err) == corrupt


def test_registry_passes_streaming_options_of_folder_and_tfds_sets(folder):
    """``--dataset-arg streaming=true|cache=true`` reach the loader and are kept in ``dataset_kwargs``."""
    from keras_resnets.data import registry
    from keras_resnets.data.streaming import StreamingDatasets

    assert registry.get_dataset("folder").options == ("streaming", "cache")
    assert registry.get_dataset("mnist").options == ("streaming", "cache")
    data = registry.load("folder", {"streaming": True}, data_dir=folder, batch_size=4, image_size=(16, 16))
    assert isinstance(data, StreamingDatasets)
    data = registry.load("folder", {"streaming": False}, data_dir=folder, batch_size=4, image_size=(16, 16))
    assert not isinstance(data, StreamingDatasets)
    with pytest.raises(ValueError, match="streaming must be one of 'auto', True, False; got 'yes'"):
        registry.load("folder", {"streaming": "yes"}, data_dir=folder, batch_size=4)
    with pytest.raises(ValueError, match="dataset 'digits' has no option 'streaming'; allowed: none"):
        registry.load("digits", {"streaming": True})
