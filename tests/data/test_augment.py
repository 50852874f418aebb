"""Augmentation policies: what each one changes, and that equal seeds give equal batches."""
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return rng.uniform(0, 255, size=(16, 12, 12, 3)).astype(np.float32)


def _augment(batch, policy, seed=(1, 2)):
    import tensorflow as tf

    from keras_resnets.data.augment import augment_batch

    return augment_batch(tf.constant(batch), policy, tf.constant(seed, tf.int64)).numpy()


def test_none_is_identity(batch):
    np.testing.assert_array_equal(_augment(batch, "none"), batch)


def test_crop_is_a_zero_padded_translation_without_flip(batch):
    """At 12x12 the padding is 2 pixels (CIFAR's 4 at 32, scaled), so a digit moves at most 2 pixels."""
    from keras_resnets.data.augment import crop_padding

    assert (crop_padding(32), crop_padding(12), crop_padding(16), crop_padding(8), crop_padding(4)) == (4, 2, 2, 1, 1)
    out = _augment(batch, "crop")
    assert out.shape == batch.shape
    padded = np.pad(batch, [(0, 0), (2, 2), (2, 2), (0, 0)])
    for image, original in zip(out, padded):
        windows = [original[r : r + 12, c : c + 12] for r in range(5) for c in range(5)]
        assert any(np.array_equal(image, w) for w in windows)
    assert not np.array_equal(out, batch)  # 16 images all at offset (2, 2) has probability 25**-16


def test_crop_flip_flips_some_images(batch):
    out = _augment(batch, "crop_flip")
    padded = np.pad(batch, [(0, 0), (2, 2), (2, 2), (0, 0)])
    flipped = 0
    for image, original in zip(out, padded):
        windows = [original[r : r + 12, c : c + 12] for r in range(5) for c in range(5)]
        if not any(np.array_equal(image, w) for w in windows):
            assert any(np.array_equal(image[:, ::-1], w) for w in windows)
            flipped += 1
    assert 0 < flipped < len(batch)


def test_color_blur_changes_values_and_stays_in_range(batch):
    out = _augment(batch, "crop_flip_color_blur")
    assert out.shape == batch.shape
    assert out.min() >= 0.0 and out.max() <= 255.0 + 1e-3
    # blur and jitter produce values that are not pixels of the padded input
    assert not np.isin(out, np.append(batch, 0.0)).all()


@pytest.mark.parametrize("policy", ["crop", "crop_flip", "crop_flip_color_blur"])
def test_equal_seeds_equal_output_different_seeds_differ(batch, policy):
    np.testing.assert_array_equal(_augment(batch, policy, (5, 7)), _augment(batch, policy, (5, 7)))
    assert not np.array_equal(_augment(batch, policy, (5, 7)), _augment(batch, policy, (5, 8)))


def test_unknown_policy_names_allowed_ones(batch):
    with pytest.raises(ValueError, match=r"'cutmix'.*crop_flip_color_blur"):
        _augment(batch, "cutmix")


def test_static_expansion_adds_augmented_copies():
    from keras_resnets.data.augment import expand_statically

    images = np.random.default_rng(1).integers(0, 256, size=(10, 8, 8, 3), dtype=np.uint8)
    labels = np.arange(10, dtype=np.int32)
    x, y = expand_statically(images, labels, "crop_flip", copies=2, seed=0)
    assert x.shape == (30, 8, 8, 3) and x.dtype == np.uint8
    np.testing.assert_array_equal(x[:10], images)
    np.testing.assert_array_equal(y, np.tile(labels, 3))
    assert not np.array_equal(x[10:20], x[20:30])
    with pytest.raises(ValueError, match="copies"):
        expand_statically(images, labels, "none", copies=1)


def test_apply_policy_maps_a_batched_dataset(batch):
    import tensorflow as tf

    from keras_resnets.data import apply_policy

    ds = tf.data.Dataset.from_tensor_slices((batch, np.zeros(16, np.int32))).batch(8)
    first = [x.numpy() for x, _ in apply_policy(ds, "crop_flip", seed=3)]
    second = [x.numpy() for x, _ in apply_policy(ds, "crop_flip", seed=3)]
    assert len(first) == 2 and first[0].shape == (8, 12, 12, 3)
    np.testing.assert_array_equal(first[0], second[0])


def test_digits_are_cropped_but_never_mirrored(batch):
    """A mirrored digit is another symbol: on digit sets crop_flip crops only (pad scaled to the size)."""
    from keras_resnets.data.registry import flips_preserve_labels

    assert not flips_preserve_labels("digits") and not flips_preserve_labels("textured_digits")
    assert flips_preserve_labels("cifar10")
    import tensorflow as tf

    from keras_resnets.data.augment import augment_batch

    no_flip = augment_batch(tf.constant(batch), "crop_flip", tf.constant((1, 2), tf.int64), flip=False).numpy()
    padded = np.pad(batch, [(0, 0), (2, 2), (2, 2), (0, 0)])
    for image, original in zip(no_flip, padded):
        assert any(np.array_equal(image, original[r : r + 12, c : c + 12]) for r in range(5) for c in range(5))


def test_digit_pipeline_with_crop_flip_never_mirrors():
    """End to end: without cropping room (1x1 padding at 8x8, 3x3 offsets) every training image of
    ``digits`` under ``crop_flip`` is a shifted, unmirrored copy of a training image."""
    from keras_resnets.data import load_dataset

    data = load_dataset("digits", batch_size=64, image_size=(8, 8), augment="crop_flip", seed=0)
    plain = load_dataset("digits", batch_size=64, image_size=(8, 8), augment="none", seed=0)
    augmented, _ = next(iter(data.train(1)))
    originals, _ = next(iter(plain.train(1)))  # same seed: same order
    shifted = lambda x, r, c: np.pad(x, [(1, 1), (1, 1), (0, 0)], constant_values=np.nan)[r:r + 8, c:c + 8]
    for image, source in zip(augmented.numpy(), originals.numpy()):
        crops = [shifted(source, r, c) for r in range(3) for c in range(3)]
        inside = [np.allclose(image[np.isfinite(c)], c[np.isfinite(c)], atol=1e-4) for c in crops]
        assert any(inside)
