"""Augmentation policies of the CIFAR-10 study, vectorised over batches.

Every policy works on a *batch* of float32 images in the 0..255 pixel scale (before normalisation)
and draws its randomness from a stateless seed, so the same ``(seed, batch)`` pair always gives the
same augmented batch, whatever the parallelism of the input pipeline. Operating on whole batches
keeps the Python-free tf.data graph small and fast (one gather for the crop of a whole batch).

Policies:

- ``none``: images unchanged.
- ``crop``: zero-pad by 1/8 of the image height (4 pixels at CIFAR's 32, 2 at 12 or 16, as
  ``crop_padding``), random crop back to the original size; no flip: the label-preserving policy for
  data where left and right differ, e.g. handwritten digits.
- ``crop_flip``: ``crop`` + random horizontal flip (the standard CIFAR augmentation of He et al.).
- ``crop_flip_color_blur``: ``crop_flip`` + colour jitter (brightness, contrast, saturation, hue)
  + Gaussian blur (3x3 kernel, sigma in [0.1, 2.0]), as in the study's third table block.
- Digits (``digits``, ``textured_digits``) are never mirrored: a mirrored digit is another symbol, so on
  them ``crop_flip`` crops only and ``crop_flip_color_blur`` crops, jitters and blurs
  (``DatasetInfo.mirrorable``, from the dataset registry).
- ``imagenet_scale``, ``inception_crop``: the ImageNet policies, per source image before batching
  (``keras_resnets.data.imagenet``); ``augment_batch`` refuses them.
"""
from __future__ import annotations

try:
    import tensorflow as tf
except ImportError:  # JAX-only installs (keras_resnets.data.arrays); tf.data pipelines need it
    tf = None

from keras_resnets.data.imagenet import TRAIN_POLICIES

BATCH_POLICIES = ("none", "crop", "crop_flip", "crop_flip_color_blur")
MIRRORING_POLICIES = ("crop_flip", "crop_flip_color_blur")  # mirror left-right where the dataset allows it
# Per-image policies of keras_resnets.data.imagenet: they crop the source images, so they run in
# the streaming pipelines only (load_dataset streams automatically for them).
IMAGENET_POLICIES = TRAIN_POLICIES
POLICIES = BATCH_POLICIES + IMAGENET_POLICIES

CROP_PADDING = 4  # at 32x32 (He et al.); other sizes scale it: crop_padding(size)
BRIGHTNESS = 0.2  # max relative change, as torchvision ColorJitter(0.2, 0.2, 0.2, 0.05)
CONTRAST = 0.2
SATURATION = 0.2
HUE = 0.05
BLUR_SIGMA = (0.1, 2.0)


def validate_policy(policy: str) -> str:
    """Return ``policy`` if it names a known policy, else raise ``ValueError``.

    Args:
        policy: policy name.
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown augmentation policy {policy!r}; allowed: {', '.join(POLICIES)}")
    return policy


def crop_padding(height) -> int:
    """Crop padding for images ``height`` pixels high: CIFAR's 4 at 32 scaled to the size (1/8, at least 1).

    A fixed 4 pixels would shift a 12-pixel digit by a third of the frame.
    """
    if height is None:
        return CROP_PADDING
    return max(1, int(round(CROP_PADDING * int(height) / 32)))


def _uniform(shape, seed, low, high):
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high)


def random_crop(images: tf.Tensor, seed, padding: int | None = None, flip_seed=None) -> tf.Tensor:
    """Zero-pad each image by ``padding`` pixels and crop it back at a random offset.

    With ``flip_seed``, each crop is also mirrored left-right with probability 1/2; crop and flip
    are then one gather over the whole batch (the fast path of ``crop_flip``).

    Args:
        images: ``(batch, height, width, channels)`` float tensor.
        seed: stateless seed of the offsets, shape ``(2,)`` int tensor.
        padding: pixels added on every side before cropping (default ``crop_padding`` of the height).
        flip_seed: stateless seed of the flips, or ``None`` for no flipping.
    """
    if padding is None:
        padding = crop_padding(images.shape[1])
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    padded_h, padded_w = height + 2 * padding, width + 2 * padding
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    offsets = tf.random.stateless_uniform(
        (batch, 2), seed=seed, minval=0, maxval=2 * padding + 1, dtype=tf.int32
    )
    cols = tf.range(width)[None, :]
    if flip_seed is not None:
        flip = tf.random.stateless_uniform((batch, 1), seed=flip_seed) < 0.5
        cols = tf.where(flip, width - 1 - cols, cols)
    rows = offsets[:, :1] + tf.range(height)[None, :]  # (batch, height)
    cols = offsets[:, 1:] + cols  # (batch, width)
    flat_index = (
        tf.range(batch)[:, None, None] * (padded_h * padded_w) + rows[:, :, None] * padded_w + cols[:, None, :]
    )
    pixels = tf.reshape(padded, [-1, channels])
    return tf.gather(pixels, flat_index)


def color_jitter(images: tf.Tensor, seed) -> tf.Tensor:
    """Random brightness, contrast, saturation and hue per image (pixels stay in 0..255).

    Saturation and hue only apply to 3-channel images.

    Args:
        images: ``(batch, height, width, channels)`` float tensor in 0..255.
        seed: stateless seed, shape ``(2,)``.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    batch = tf.shape(images)[0]
    x = images / 255.0
    factor = _uniform((batch, 1, 1, 1), seeds[0], 1 - BRIGHTNESS, 1 + BRIGHTNESS)
    x = tf.clip_by_value(x * factor, 0.0, 1.0)
    factor = _uniform((batch, 1, 1, 1), seeds[1], 1 - CONTRAST, 1 + CONTRAST)
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    x = tf.clip_by_value((x - mean) * factor + mean, 0.0, 1.0)
    if images.shape[-1] == 3:
        factor = _uniform((batch, 1, 1, 1), seeds[2], 1 - SATURATION, 1 + SATURATION)
        gray = tf.image.rgb_to_grayscale(x)
        x = tf.clip_by_value((x - gray) * factor + gray, 0.0, 1.0)
        hsv = tf.image.rgb_to_hsv(x)
        shift = _uniform((batch, 1, 1), seeds[3], -HUE, HUE)
        hue = tf.math.floormod(hsv[..., 0] + shift, 1.0)
        x = tf.image.hsv_to_rgb(tf.stack([hue, hsv[..., 1], hsv[..., 2]], axis=-1))
    return x * 255.0


def gaussian_blur(images: tf.Tensor, seed) -> tf.Tensor:
    """Blur each image with a 3x3 Gaussian whose sigma is drawn from ``BLUR_SIGMA``.

    The kernel is separable, so the blur is two weighted sums of shifted copies (edges replicated).

    Args:
        images: ``(batch, height, width, channels)`` float tensor.
        seed: stateless seed, shape ``(2,)``.
    """
    sigma = _uniform((tf.shape(images)[0], 1, 1, 1), seed, *BLUR_SIGMA)
    side = tf.exp(-1.0 / (2.0 * sigma**2))  # weight of the neighbours relative to the centre
    centre_weight, side_weight = 1.0 / (1.0 + 2.0 * side), side / (1.0 + 2.0 * side)

    def blur_axis(x, axis):
        padded = tf.concat(
            [tf.gather(x, [0], axis=axis), x, tf.gather(x, [tf.shape(x)[axis] - 1], axis=axis)],
            axis=axis,
        )
        size = tf.shape(x)[axis]
        before = tf.gather(padded, tf.range(0, size), axis=axis)
        after = tf.gather(padded, tf.range(2, size + 2), axis=axis)
        return centre_weight * x + side_weight * (before + after)

    return blur_axis(blur_axis(images, 1), 2)


def augment_batch(images: tf.Tensor, policy: str, seed, flip: bool = True) -> tf.Tensor:
    """Apply ``policy`` to a batch of images.

    Args:
        images: ``(batch, height, width, channels)`` float32 tensor in the 0..255 pixel scale.
        policy: one of ``POLICIES``.
        seed: stateless seed, shape ``(2,)`` int tensor; equal seeds give equal results.
        flip: let the ``crop_flip*`` policies mirror images (``False`` for digits).

    Returns:
        The augmented batch, same shape and scale.
    """
    validate_policy(policy)
    if policy == "none":
        return images
    if policy in IMAGENET_POLICIES:
        raise ValueError(f"augment={policy!r} crops source images before batching (streaming pipelines); "
                         f"batch policies: {', '.join(BATCH_POLICIES)}")
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 4)
    flips = flip and policy in MIRRORING_POLICIES
    images = random_crop(images, seeds[0], flip_seed=seeds[1] if flips else None)
    if policy == "crop_flip_color_blur":
        images = color_jitter(images, seeds[2])
        images = gaussian_blur(images, seeds[3])
    return images


def apply_policy(dataset: tf.data.Dataset, policy: str, seed: int = 0) -> tf.data.Dataset:
    """Augment a batched ``(images, labels)`` dataset on the fly.

    The n-th batch of every iteration gets the stateless seed ``(seed, n)``, so an iteration is
    reproducible; shuffle upstream (with a per-epoch seed) to vary what each epoch sees.

    Args:
        dataset: batched dataset of float32 images in 0..255 and labels.
        policy: one of ``POLICIES``.
        seed: integer seed of the policy's randomness.
    """
    validate_policy(policy)
    if policy == "none":
        return dataset

    def augment(index, batch):
        images, labels = batch
        return augment_batch(images, policy, tf.stack([tf.constant(seed, tf.int64), index])), labels

    return dataset.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)


def expand_statically(images, labels, policy: str, copies: int, seed: int = 0, chunk: int = 1024, flip: bool = True):
    """Enlarge a training set with ``copies`` augmented copies of itself (the study's static expansion).

    The study built its 100k (crop+flip, one copy) and 150k (crop+flip+colour+blur, two copies)
    CIFAR-10 training sets this way, then trained on them without further augmentation.

    Args:
        images: ``(n, h, w, c)`` uint8 array, 0..255.
        labels: ``(n,)`` int array.
        policy: one of ``POLICIES`` other than ``none``.
        copies: number of augmented copies to add (>= 1).
        seed: integer seed; copy ``k`` uses seeds ``(seed, k, chunk index)``.
        chunk: images augmented per step.
        flip: let the policy mirror images (``False`` for digits).

    Returns:
        ``(images, labels)`` numpy arrays with ``n * (copies + 1)`` rows, originals first.
    """
    import numpy as np

    validate_policy(policy)
    if policy == "none" or copies < 1:
        raise ValueError(
            f"static expansion needs an augmentation policy other than 'none' and copies >= 1; "
            f"got policy={policy!r}, copies={copies}"
        )
    parts_x, parts_y = [images], [labels]
    for copy in range(1, copies + 1):
        for start in range(0, len(images), chunk):
            batch = tf.convert_to_tensor(images[start : start + chunk], tf.float32)
            augmented = augment_batch(batch, policy, tf.constant([seed * 1000 + copy, start], tf.int64), flip)
            parts_x.append(np.clip(np.rint(augmented.numpy()), 0, 255).astype(np.uint8))
        parts_y.append(labels)
    return np.concatenate(parts_x), np.concatenate(parts_y)
