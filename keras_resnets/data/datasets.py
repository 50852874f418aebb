"""``load_dataset``: one call from a dataset name to ready tf.data pipelines.

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
import os
from dataclasses import dataclass, field

import numpy as np

from keras_resnets.data import arrays as arrays_lib
from keras_resnets.data import augment as augment_lib
from keras_resnets.data import sources, textured_digits

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
        flip = augment_lib.flips_preserve_labels(self.info.name)

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


def list_datasets() -> list:
    """Classification names ``load_dataset`` accepts besides any TFDS image-classification name
    (the dataset registry's; ``keras_resnets.data.registry.list_datasets()`` lists every task's)."""
    from keras_resnets.data import registry

    return registry.list_datasets(registry.CLASSIFICATION)


def _no_expand_when_streaming(expand: int) -> None:
    if expand:
        raise ValueError(f"expand={expand} (static expansion) needs the images in memory; pass streaming=False "
                         f"or augment on the fly (expand=0)")


def _tfds_train_count(builder) -> int:
    splits = builder.info.splits
    if "train" in splits:
        return int(splits["train"].num_examples)
    return int(builder.as_dataset(split="train").cardinality())


def _tfds_image_shape(builder, size, channels) -> tuple:
    native = builder.info.features["image"].shape
    height, width = size if size is not None else native[:2]
    return height, width, channels or native[-1]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer; got {value!r}")
    return int(value)


def load_dataset(
    name: str = sources.DIGITS,
    *,
    data_dir: str | None = None,
    batch_size: int = 128,
    augment: str = "none",
    expand: int = 0,
    image_size=None,
    channels: int | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool = False,
    streaming="auto",
    cache: bool = False,
) -> Datasets:
    """Load a dataset by name into training, validation and test pipelines.

    Args:
        name: ``"digits"`` (embedded, offline), ``"textured_digits"`` (synthetic, generated offline), ``"folder"`` (images under ``data_dir``, one
            sub-folder per class), or a TFDS name (``cifar10``, ``cifar100``, ``imagenette``, ...).
        data_dir: TFDS data dir, or the image folder for ``"folder"``.
        batch_size: batch size of every pipeline.
        augment: augmentation policy (``keras_resnets.data.augment.POLICIES``); applied on the fly
            unless ``expand`` > 0.
        expand: if > 0, enlarge the training set once with this many augmented copies (the CIFAR-10
            study's static expansion) and do no on-the-fly augmentation.
        image_size: ``(height, width)``; default 32x32 for digits and folders, native for TFDS
            (datasets of varying size, such as imagenette, need it).
        channels: 1 or 3; default 1 for digits, 3 for folders, native for TFDS.
        validation_split: fraction of the training images held out for validation.
        seed: seed of shuffling and augmentation (and of the hold-out for TFDS/folders).
        download: let TFDS download a missing dataset (needs network).
        streaming: ``"auto"`` (default), ``True`` or ``False``: read, decode and augment images on the
            fly (``keras_resnets.data.streaming``) instead of holding them in memory. ``"auto"``
            streams folders and TFDS datasets whose decoded training images exceed 256 MiB, and
            always for the ImageNet policies (``imagenet_scale``, ``inception_crop``, which crop
            the source images); the digits are always in memory.
        cache: streaming only: keep the encoded files of a folder and the decoded evaluation
            batches in memory (for small datasets read many times).

    Returns:
        ``Datasets`` with ``train(epochs, initial_epoch)``, ``validation``, ``test`` and ``info``.
    """
    from keras_resnets.data import streaming as streaming_lib

    batch_size = _positive_int("batch_size", batch_size)
    augment_lib.validate_policy(augment)
    if isinstance(expand, bool) or not isinstance(expand, int) or expand < 0:
        raise ValueError(f"expand must be an integer >= 0 (augmented copies to add); got {expand!r}")
    if expand and augment == "none":
        raise ValueError("expand > 0 needs an augmentation policy other than 'none'; got augment='none'")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels!r}")
    if cache not in (True, False):  # 1 and 0 pass as True and False, as in the streaming check
        raise ValueError(f"cache must be true or false; got {cache!r}")
    if not arrays_lib.tensorflow_available():
        if name not in (sources.DIGITS, textured_digits.NAME):
            arrays_lib.require_tensorflow(f"dataset {name!r}")
        arrays_lib.check_policy(augment, expand)
    size = tuple(image_size) if image_size is not None else None
    if size is None and augment in augment_lib.IMAGENET_POLICIES:
        size = (224, 224)  # the papers' crop
    if name in (sources.DIGITS, textured_digits.NAME):  # embedded / generated: always in memory
        if streaming is True or augment in augment_lib.IMAGENET_POLICIES:
            raise ValueError(f"the {name} are held in memory and have no source images to crop; got "
                             f"streaming={streaming!r}, augment={augment!r} (allowed: streaming 'auto' or False "
                             f"with augment {', '.join(augment_lib.BATCH_POLICIES)})")
        streaming_lib.use_streaming(streaming, augment, 0, (1, 1, 1))
        if name == sources.DIGITS:
            arrays = sources.load_digits(size or (32, 32), channels or 1, validation_split)
        else:  # synthetic (keras_resnets/data/textured_digits.py)
            arrays = textured_digits.load_textured_digits(size or (32, 32), channels or 3, validation_split)
    elif name == sources.FOLDER or (name and os.path.isdir(os.path.expanduser(name))):
        folder = data_dir if name == sources.FOLDER else name
        if not folder:
            raise ValueError("dataset 'folder' needs data_dir=<folder with one sub-folder per class>")
        listing = streaming_lib.list_image_folder(folder)
        size = size or (32, 32)
        shape = (*size, channels or 3)
        if streaming_lib.use_streaming(streaming, augment, len(listing[1]), shape):
            _no_expand_when_streaming(expand)
            return streaming_lib.stream_folder(
                folder, batch_size=batch_size, augment=augment, image_size=size, channels=channels,
                validation_split=validation_split, seed=seed, cache=cache, listing=listing, name=name)
        arrays = sources.load_folder(folder, size, channels or 3, validation_split, seed)
    elif isinstance(name, str) and name:
        builder, _ = sources.tfds_builder(name, data_dir, download)
        if streaming_lib.use_streaming(streaming, augment, _tfds_train_count(builder),
                                       _tfds_image_shape(builder, size, channels)):
            _no_expand_when_streaming(expand)
            return streaming_lib.stream_tfds(
                builder, name, batch_size=batch_size, augment=augment, image_size=size, channels=channels,
                validation_split=validation_split, seed=seed, cache=cache)
        arrays = sources.load_tfds(name, data_dir, size, channels, validation_split, download, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(list_datasets())} or any TFDS name")

    x_train, y_train = arrays.train
    mean, std = channel_stats(x_train)
    if expand:
        x_train, y_train = augment_lib.expand_statically(x_train, y_train, augment, expand, seed,
                                                         flip=augment_lib.flips_preserve_labels(name))
    info = DatasetInfo(
        name=name,
        num_classes=len(arrays.class_names),
        class_names=tuple(arrays.class_names),
        image_shape=tuple(int(d) for d in x_train.shape[1:]),
        mean=mean,
        std=std,
        num_train=len(y_train),
        num_validation=len(arrays.validation[1]),
        num_test=len(arrays.test[1]),
    )
    if not arrays_lib.tensorflow_available():
        return arrays_lib.ArrayDatasets.from_arrays(info, (x_train, y_train), arrays.validation, arrays.test,
                                                    batch_size=batch_size, augment=augment, seed=seed)
    return Datasets(
        info=info,
        batch_size=batch_size,
        augment="none" if expand else augment,
        seed=int(seed),
        validation=_eval_pipeline(*arrays.validation, info, batch_size),
        test=_eval_pipeline(*arrays.test, info, batch_size),
        _train_images=x_train,
        _train_labels=y_train.astype(np.int32),
    )
