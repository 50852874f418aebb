"""``Datasets``: the in-memory splits of one dataset as tf.data pipelines (``keras_resnets.data.loaders``
builds them; ``keras_resnets.data.registry.load_dataset`` is the call by name).

The training pipeline is a pure function of ``(seed, epoch)``: epoch ``e`` is the training set in
the order of a stateless permutation seeded by ``(seed, e)``, augmented with stateless seeds
``(seed, global batch number)``. A run resumed at epoch ``e`` therefore sees exactly the batches an
uninterrupted run sees, which is what makes resume-after-kill bit-exact in deterministic mode.

Pipelines yield ``(images, labels)``: float32 images normalised per channel as
``(pixels - mean) / std`` (``mean``/``std`` in the 0..255 scale, measured on the training split),
int32 labels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from keras_resnets.data import augment as augment_lib

try:
    import tensorflow as tf
except ImportError:  # JAX-only installs: the in-memory datasets use keras_resnets.data.arrays
    tf = None


@dataclass(frozen=True)
class DatasetInfo:
    """What a model and its exported artifacts need to know about a dataset.

    Attributes:
        name: dataset name as given to ``load_dataset``.
        num_classes: number of classes.
        class_names: class names, index = label.
        image_shape: ``(height, width, channels)`` of the pipeline's images.
        mean: per-channel mean in the 0..255 scale (training split).
        std: per-channel standard deviation in the 0..255 scale (training split).
        num_train, num_validation, num_test: images per split (training after static expansion).
        mirrorable: a left-right mirror keeps an image's label (not for digits: the registry's entry says).
    """

    name: str
    num_classes: int
    class_names: tuple
    image_shape: tuple
    mean: tuple
    std: tuple
    num_train: int = 0
    num_validation: int = 0
    num_test: int = 0
    mirrorable: bool = True

    def to_config(self) -> dict:
        """JSON-ready dict (the run directory's ``config.json`` uses these fields)."""
        return {
            "dataset": self.name,
            "classes": self.num_classes,
            "class_names": list(self.class_names),
            "input_shape": list(self.image_shape),
            "normalization": {"mean": list(self.mean), "std": list(self.std)},
        }


@dataclass
class Datasets:
    """The splits of one dataset, built once and reusable across runs and tuning trials.

    Attributes:
        info: ``DatasetInfo``.
        batch_size: batch size of every pipeline.
        augment: on-the-fly augmentation policy of the training pipeline.
        seed: seed of shuffling and augmentation.
        validation: batched, normalised, cached validation pipeline.
        test: batched, normalised, cached test pipeline.
    """

    info: DatasetInfo
    batch_size: int
    augment: str
    seed: int
    validation: tf.data.Dataset
    test: tf.data.Dataset
    _train_images: np.ndarray = field(repr=False, default=None)
    _train_labels: np.ndarray = field(repr=False, default=None)

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch (the last one may be smaller)."""
        return math.ceil(len(self._train_labels) / self.batch_size)

    def train(self, epochs: int, initial_epoch: int = 0) -> tf.data.Dataset:
        """Training batches of epochs ``initial_epoch .. epochs-1``, back to back.

        Pass it to ``fit`` with ``steps_per_epoch=self.steps_per_epoch``.

        Args:
            epochs: index of the last epoch + 1.
            initial_epoch: first epoch to produce (a resumed run starts after its last checkpoint).
        """
        images = tf.constant(self._train_images)
        labels = tf.constant(self._train_labels)
        count, batch_size, steps, seed = len(self._train_labels), self.batch_size, self.steps_per_epoch, self.seed
        mean, std = _normalizer(self.info)
        policy = self.augment
        flip = self.info.mirrorable

        def epoch_batches(epoch):
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.argsort(tf.random.stateless_uniform([count], seed=key))
            batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
            return batches.enumerate().map(lambda b, idx: (epoch * steps + b, idx))

        def load(step, idx):
            x = tf.cast(tf.gather(images, idx), tf.float32)
            x = augment_lib.augment_batch(x, policy, tf.stack([tf.constant(seed + 1, tf.int64), step]), flip)
            return (x - mean) / std, tf.gather(labels, idx)

        ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
        ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    return options


def _normalizer(info: DatasetInfo):
    return tf.constant(info.mean, tf.float32), tf.constant(info.std, tf.float32)


def _eval_pipeline(images, labels, info: DatasetInfo, batch_size: int) -> tf.data.Dataset:
    mean, std = _normalizer(info)
    ds = tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)
    ds = ds.map(lambda x, y: ((tf.cast(x, tf.float32) - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.cache().prefetch(tf.data.AUTOTUNE).with_options(_options())


def channel_stats(images: np.ndarray):
    """Per-channel mean and standard deviation (0..255 scale) of a uint8 ``(n, h, w, c)`` array."""
    pixels = images.reshape(-1, images.shape[-1]).astype(np.float64)
    std = pixels.std(axis=0)
    return tuple(round(float(v), 4) for v in pixels.mean(axis=0)), tuple(
        round(float(max(v, 1e-3)), 4) for v in std
    )
