"""Segmentation data: generated shapes (offline, exact masks) and TFDS Oxford-IIIT Pet masks.

Pipelines yield ``(images, masks)``: float32 images normalised per channel as ``(pixels - mean) / std``
(0..255 scale, measured on the training split) and int32 masks ``(H, W)`` of class indices, with
:data:`IGNORE_LABEL` where a pixel has no class.

* :func:`make_shapes`: random circles, rectangles and triangles in random colours on textured
  backgrounds (noise, stripes, checkerboards, gradients); the masks are exact (a pixel belongs to
  the shape whose geometry contains its centre, later shapes on top).
* :func:`load_oxford_pets`: the ``oxford_iiit_pet`` TFDS dataset read from a data dir (no download
  unless asked); classes pet, background, border.
"""
from __future__ import annotations

import os

import numpy as np

from keras_resnets.data.datasets import DatasetInfo
from keras_resnets.data.sources import DEFAULT_DATA_DIR, ensure_prepared
from keras_resnets.tasks import IGNORE_LABEL
SHAPE_CLASSES = ("background", "circle", "rectangle", "triangle")
PET_CLASSES = ("pet", "background", "border")
_TEXTURES = ("noise", "stripes", "checkerboard", "gradient")


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A ``(size, size, 3)`` float background in 0..255: two random colours mixed by a random pattern."""
    rows, cols = np.mgrid[0:size, 0:size].astype("float32")
    kind = _TEXTURES[rng.integers(len(_TEXTURES))]
    if kind == "noise":
        mix = rng.uniform(0, 1, (size, size))
    elif kind == "stripes":
        angle, period = rng.uniform(0, np.pi), rng.uniform(4, 12)
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * (rows * np.cos(angle) + cols * np.sin(angle)) / period)
    elif kind == "checkerboard":
        cell = rng.integers(3, 9)
        mix = ((rows // cell + cols // cell) % 2).astype("float32")
    else:
        angle = rng.uniform(0, 2 * np.pi)
        mix = (rows * np.cos(angle) + cols * np.sin(angle)) / (size * 1.5) + 0.5
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    mix = np.clip(mix, 0, 1)[..., None]
    return a * (1 - mix) + b * mix + rng.normal(0, 8, (size, size, 3))


def _shape_mask(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
    """Boolean mask of one random shape of ``kind`` (pixel centres inside the geometry)."""
    y, x = np.mgrid[0:size, 0:size] + 0.5
    radius = rng.uniform(0.12, 0.25) * size
    cy, cx = rng.uniform(radius, size - radius, 2)
    if kind == "circle":
        return (y - cy) ** 2 + (x - cx) ** 2 <= radius ** 2
    if kind == "rectangle":
        half_h, half_w = radius * rng.uniform(0.6, 1.0, 2)
        return (np.abs(y - cy) <= half_h) & (np.abs(x - cx) <= half_w)
    # triangle: three vertices on the circle of `radius`, the point is inside when it lies on the
    # same side of all three edges
    angles = rng.uniform(0, 2 * np.pi) + np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3]) + rng.uniform(-0.3, 0.3, 3)
    vy, vx = cy + radius * np.sin(angles), cx + radius * np.cos(angles)
    sides = [(vx[(i + 1) % 3] - vx[i]) * (y - vy[i]) - (vy[(i + 1) % 3] - vy[i]) * (x - vx[i]) for i in range(3)]
    return np.all([s >= 0 for s in sides], axis=0) | np.all([s <= 0 for s in sides], axis=0)


def make_shapes(num_images: int, image_size: int = 64, max_shapes: int = 3, seed: int = 0):
    """Generate the shapes dataset.

    Args:
        num_images: number of images.
        image_size: height and width (square images).
        max_shapes: each image has 1..``max_shapes`` shapes.
        seed: random seed; the same seed gives the same images.

    Returns:
        ``(images, masks)``: uint8 ``(n, size, size, 3)`` and uint8 ``(n, size, size)`` with the
        class indices of :data:`SHAPE_CLASSES` (0 = background).
    """
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive integer, got {num_images!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 16:
        raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
    if isinstance(max_shapes, bool) or not isinstance(max_shapes, int) or max_shapes < 1:
        raise ValueError(f"max_shapes must be a positive integer, got {max_shapes!r}")
    rng = np.random.default_rng(seed)
    images = np.empty((num_images, image_size, image_size, 3), "uint8")
    masks = np.zeros((num_images, image_size, image_size), "uint8")
    for n in range(num_images):
        image = _texture(rng, image_size)
        for _ in range(rng.integers(1, max_shapes + 1)):
            label = int(rng.integers(1, len(SHAPE_CLASSES)))
            inside = _shape_mask(rng, SHAPE_CLASSES[label], image_size)
            image[inside] = rng.uniform(0, 255, 3) + rng.normal(0, 4, (int(inside.sum()), 3))
            masks[n][inside] = label
        images[n] = np.clip(np.round(image), 0, 255).astype("uint8")
    return images, masks


def load_oxford_pets(data_dir=None, image_size: int = 128, batch_size: int = 16, download: bool = False,
                     border_label: int | None = 2, seed: int = 0):
    """Train and test pipelines of TFDS ``oxford_iiit_pet`` with its trimap masks.

    The trimap values 1 (pet), 2 (background), 3 (border) become classes 0, 1, 2. Images and masks
    are resized to ``image_size`` × ``image_size`` (bilinear for images, nearest for masks).

    Args:
        data_dir: TFDS data dir (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        image_size: side of the square images.
        batch_size: batch size.
        download: download and prepare the dataset when missing (needs network).
        border_label: label of the border pixels: 2 (a class of its own) or :data:`IGNORE_LABEL`
            to leave the ambiguous outline out of the loss and the metric.
        seed: seed of the training shuffle.

    Returns:
        ``(train, test, info)``: ``tf.data`` pipelines of ``(images, masks)`` and a ``DatasetInfo``; the
        normalisation statistics are the ImageNet ones (0..255 scale), since the images vary in size.

    Raises:
        DatasetUnavailableError: the dataset is not prepared in ``data_dir`` and ``download`` is off,
            with the command that prepares it.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if border_label not in (2, IGNORE_LABEL):
        raise ValueError(f"border_label must be 2 or {IGNORE_LABEL}, got {border_label!r}")
    name = "oxford_iiit_pet"
    data_dir = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
    builder = tfds.builder(name, data_dir=data_dir)
    ensure_prepared(builder, name, data_dir, download)
    mean, std = (123.675, 116.28, 103.53), (58.395, 57.12, 57.375)
    lookup = tf.constant([IGNORE_LABEL, 0, 1, border_label], tf.int32)  # trimap value -> class

    def prepare(example):
        image = tf.image.resize(example["image"], (image_size, image_size))
        mask = tf.image.resize(example["segmentation_mask"], (image_size, image_size), method="nearest")
        mask = tf.gather(lookup, tf.cast(mask[..., 0], tf.int32))
        return (image - mean) / std, mask

    def split(which: str, shuffle: bool):
        ds = builder.as_dataset(split=which)
        if shuffle:
            ds = ds.shuffle(1024, seed=seed)
        return ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size).prefetch(tf.data.AUTOTUNE)

    splits = builder.info.splits
    info = DatasetInfo(name, len(PET_CLASSES), PET_CLASSES, (image_size, image_size, 3), mean, std,
                       num_train=splits["train"].num_examples, num_test=splits["test"].num_examples)
    return split("train", shuffle=True), split("test", shuffle=False), info
