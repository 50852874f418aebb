"""In-memory datasets without TensorFlow: numpy pipelines for the JAX (or any) backend.

``keras_resnets.train`` needs no TensorFlow for the datasets that live in memory — the embedded
``digits``, the generated ``textured_digits`` and ``shapes`` — so it runs on a machine that has
only JAX and Keras (a GPU box, say). When TensorFlow cannot be imported, ``load_dataset`` and the
registry build an ``ArrayDatasets`` instead of the tf.data ``Datasets``. It has the same interface
and the same contract:

- the training batches of epoch ``e`` are a pure function of ``(seed, e)`` (a seeded permutation
  per epoch, augmentation seeded by ``(seed, global batch number)``), so a resumed run sees the
  batches an uninterrupted run sees;
- images are float32 ``(pixels - mean) / std`` per channel, labels (or masks) int32.

The batches are not the tf.data pipeline's (another random generator), only as reproducible. The
augmentation policies that need no TensorFlow are ``none``, ``crop`` and ``crop_flip``; datasets read
from files (folders, TFDS) need tf.data and raise ``TensorFlowRequiredError``.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace

import keras
import numpy as np

# Policies implemented here in numpy (the same definitions as keras_resnets.data.augment's).
POLICIES = ("none", "crop", "crop_flip")
CROP_PADDING = 4  # at 32x32; other sizes scale it (crop_padding)


def crop_padding(height: int) -> int:
    """CIFAR's 4-pixel crop padding at 32 scaled to ``height`` (1/8, at least 1), as ``augment.crop_padding``."""
    return max(1, int(round(CROP_PADDING * int(height) / 32)))
IN_MEMORY_DATASETS = ("digits", "textured_digits", "shapes")


class TensorFlowRequiredError(ImportError):
    """The requested input pipeline needs TensorFlow, which is not installed."""


@functools.lru_cache(maxsize=None)
def tensorflow_available() -> bool:
    """Whether ``import tensorflow`` works here (asked once per process)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def require_tensorflow(what: str) -> None:
    """Raise ``TensorFlowRequiredError`` naming ``what`` and the alternatives when TensorFlow is missing."""
    if not tensorflow_available():
        raise TensorFlowRequiredError(
            f"{what} needs TensorFlow (tf.data), which is not installed; install tensorflow, or use an "
            f"in-memory dataset ({', '.join(IN_MEMORY_DATASETS)}) with augment {', '.join(POLICIES)}")


def check_policy(augment: str, expand: int = 0) -> None:
    """Refuse, in one line, an augmentation the numpy pipeline does not implement."""
    if augment not in POLICIES:
        raise TensorFlowRequiredError(
            f"augment={augment!r} needs TensorFlow, which is not installed; without it the allowed "
            f"policies are {', '.join(POLICIES)}")
    if expand:
        raise TensorFlowRequiredError(f"expand={expand} (static expansion) needs TensorFlow, which is not "
                                      f"installed; augment on the fly instead (expand=0)")


def resize_bilinear(images: np.ndarray, size) -> np.ndarray:
    """Bilinear resize of a uint8 ``(n, h, w, c)`` batch to ``size`` (h, w), as ``tf.image.resize`` does
    (half-pixel centres, edges clamped, no antialiasing); returns uint8.
    """
    def axis_weights(source: int, target: int):
        position = np.maximum((np.arange(target) + 0.5) * (source / target) - 0.5, 0.0)
        lower = np.minimum(np.floor(position).astype(int), source - 1)
        upper = np.minimum(lower + 1, source - 1)
        return lower, upper, (position - lower).astype(np.float32)

    (top, bottom, dy), (left, right, dx) = (axis_weights(s, t) for s, t in zip(images.shape[1:3], size))
    x = images.astype(np.float32)
    rows = x[:, top] * (1 - dy)[None, :, None, None] + x[:, bottom] * dy[None, :, None, None]
    out = rows[:, :, left] * (1 - dx)[None, None, :, None] + rows[:, :, right] * dx[None, None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def augment_batch(images: np.ndarray, policy: str, rng: np.random.Generator, flip: bool = True) -> np.ndarray:
    """``crop`` / ``crop_flip`` on a batch (any dtype): zero-pad by ``crop_padding(height)`` pixels (4 at
    32x32), crop back at a random offset, and (``crop_flip``) mirror each image left-right with
    probability 1/2 (not with ``flip=False``: digits)."""
    if policy == "none":
        return images
    batch, height, width, _ = images.shape
    pad = crop_padding(height)
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    offsets = rng.integers(0, 2 * pad + 1, size=(batch, 2))
    # every (row, column) window of every image as a view; the crop is one gather of whole windows
    windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(1, 2))
    out = np.moveaxis(windows[np.arange(batch), offsets[:, 0], offsets[:, 1]], 1, -1)  # (b, c, h, w) -> (b, h, w, c)
    if policy == "crop_flip" and flip:
        mirrored = rng.random(batch) < 0.5
        out[mirrored] = out[mirrored, :, ::-1]
    return out


class EvalBatches(keras.utils.PyDataset):
    """A fixed split in order, batched and normalised; iterable any number of times."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, batch_size: int, drop_remainder=False):
        super().__init__()
        self.images, self.labels = images, labels.astype(np.int32)
        self.mean, self.std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        self.scale = 1 / self.std
        self.batch_size, self.drop_remainder = batch_size, drop_remainder

    def __len__(self) -> int:
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(len(self.labels) / self.batch_size)

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(index)
        part = slice(index * self.batch_size, (index + 1) * self.batch_size)
        return self.normalise(self.images[part]), self.labels[part]

    def normalise(self, images: np.ndarray) -> np.ndarray:
        """``(images - mean) / std`` as float32."""
        out = images.astype(np.float32)
        out -= self.mean
        out *= self.scale
        return out

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@dataclass
class ArrayDatasets:
    """The ``Datasets`` interface over numpy arrays (see the module docstring).

    Attributes:
        info: ``keras_resnets.data.DatasetInfo``.
        batch_size: batch size of every split.
        augment: training augmentation, one of ``POLICIES``.
        seed: seed of the per-epoch order and of the augmentation.
        validation, test: ``EvalBatches`` of the held-out splits.
        drop_remainder: only full batches (data-parallel runs, where every replica needs equal work).
    """

    info: object
    batch_size: int
    augment: str
    seed: int
    validation: EvalBatches
    test: EvalBatches
    _train_images: np.ndarray = field(repr=False, default=None)
    _train_labels: np.ndarray = field(repr=False, default=None)
    drop_remainder: bool = False

    @classmethod
    def from_arrays(cls, info, train, validation, test, *, batch_size: int, augment: str = "none", seed: int = 0):
        """Build from ``(images, labels)`` uint8/int pairs of the three splits."""
        check_policy(augment)
        splits = (EvalBatches(*split, info.mean, info.std, batch_size) for split in (validation, test))
        return cls(info, batch_size, augment, int(seed), *splits, _train_images=train[0],
                   _train_labels=np.asarray(train[1]).astype(np.int32))

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch (the last one may be smaller unless ``drop_remainder``)."""
        rounding = math.floor if self.drop_remainder else math.ceil
        return rounding(len(self._train_labels) / self.batch_size)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The training images' order in epoch ``epoch``."""
        return np.random.default_rng([self.seed, epoch]).permutation(len(self._train_labels))

    def epoch_batch(self, epoch: int, step: int, order: np.ndarray | None = None):
        """Batch ``step`` of epoch ``epoch`` (``order``: that epoch's ``epoch_order``, to reuse it):
        normalised float32 images and int32 labels."""
        order = self.epoch_order(epoch) if order is None else order
        index = order[step * self.batch_size:(step + 1) * self.batch_size]
        rng = np.random.default_rng([self.seed + 1, epoch * self.steps_per_epoch + step])
        flip = self.info.mirrorable
        images = augment_batch(self._train_images[index], self.augment, rng, flip)  # uint8: a quarter of the bytes
        return self.validation.normalise(images), self._train_labels[index]

    def train(self, epochs: int, initial_epoch: int = 0):
        """Training batches of epochs ``initial_epoch .. epochs-1``, back to back (a generator; pass
        ``steps_per_epoch`` to ``fit``)."""
        for epoch in range(initial_epoch, epochs):
            order = self.epoch_order(epoch)
            for step in range(self.steps_per_epoch):
                yield self.epoch_batch(epoch, step, order)

    def full_batches(self) -> ArrayDatasets:
        """The same data with full batches only, in every split."""
        splits = {name: EvalBatches(s.images, s.labels, s.mean, s.std, s.batch_size, drop_remainder=True)
                  for name, s in (("validation", self.validation), ("test", self.test))}
        return replace(self, drop_remainder=True, **splits)
