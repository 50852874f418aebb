"""The dataset registry: a name -> its loader, its task and its metadata.

Registered: ``digits`` (embedded), ``folder`` (an image folder), the TFDS classification sets the
docs use (``cifar10``, ``cifar100``, ``imagenette``), ``shapes`` (generated segmentation, offline) and
``oxford_iiit_pet`` (TFDS segmentation). Any other name is read as a TFDS image-classification
dataset, and an existing folder path as ``folder``, as ``load_dataset`` always did.

The registry is the only place a dataset name is resolved: ``load(name, ...)`` returns a
:class:`~keras_resnets.data.contract.DatasetPipelines` (``info``, ``batch_size``, ``augment``,
``seed``, ``train(epochs, initial_epoch)``, ``steps_per_epoch``, ``validation``, ``test``), whatever
the task; an entry's ``evaluation_split`` gives ``keras-resnets evaluate`` the unprocessed images.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np

from keras_resnets.data import arrays, sources
from keras_resnets.data.contract import DatasetPipelines

CLASSIFICATION, SEGMENTATION = "classification", "segmentation"


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset.

    Attributes:
        name: the name runs use.
        task: ``classification`` or ``segmentation``.
        description: one line.
        offline: usable without network or prepared files.
        options: keys of ``dataset_kwargs`` its loader accepts (kept in ``config.json``).
        loader: ``loader(name, **load_keywords, **dataset_kwargs) -> Datasets``.
        evaluation_split: ``(name, run config, split, data_dir, validation_split, limit) -> split``
            with ``examples()``: the unprocessed images ``keras-resnets evaluate``'s protocols crop
            (``None``: the dataset has none for them).
    """

    name: str
    task: str
    description: str
    offline: bool
    options: tuple = ()
    loader: object = field(default=None, repr=False, compare=False)
    evaluation_split: object = field(default=None, repr=False, compare=False)


# Options of the folder and TFDS loaders (``--dataset-arg streaming=true``): decode on the fly or in
# memory ("auto" decides by size, see keras_resnets.data.streaming), and caching of a streamed set.
STREAMING_OPTIONS = ("streaming", "cache")


def _load_classification(name, *, data_dir=None, batch_size=128, augment="none", expand=0, image_size=None,
                         channels=None, validation_split=0.1, seed=0, download=False, streaming="auto",
                         cache=False):
    from keras_resnets.data.datasets import load_dataset

    return load_dataset(name, data_dir=data_dir, batch_size=batch_size, augment=augment, expand=expand,
                        image_size=image_size, channels=channels, validation_split=validation_split, seed=seed,
                        download=download, streaming=streaming, cache=cache)


class ArraySplit:
    """In-memory images (digits, textured digits) with the ``examples()`` interface of the streaming splits."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def examples(self):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self.images, self.labels.astype("int32")))
        return ds.enumerate().map(lambda p, element: (p, tf.constant(-1, tf.int64), *element))


def _in_memory_split(load_arrays):
    """An ``evaluation_split`` over ``load_arrays(input_shape, validation_split) -> ImageArrays``
    (``all``: the training images, as the in-memory sets have no other folder)."""

    def evaluation_split(name, config, split, data_dir, validation_split, limit):
        arrays_of_run = load_arrays(tuple(config["input_shape"]), validation_split)
        images, labels = {"test": arrays_of_run.test, "validation": arrays_of_run.validation}.get(
            split, arrays_of_run.train)
        return ArraySplit(images[:limit], labels[:limit])

    return evaluation_split


def _folder_split(name, config, split, data_dir, validation_split, limit):
    from keras_resnets.data import streaming

    files, labels, _ = streaming.list_image_folder(data_dir if name == sources.FOLDER else name)
    if split != "all":
        _, held_out = streaming.holdout_indices(labels, validation_split, config.get("seed", 0))
        files, labels = files[held_out], labels[held_out]
    return streaming.FileSplit(files[:limit], labels[:limit])


def _tfds_split(name, config, split, data_dir, validation_split, limit):
    from keras_resnets.data import streaming

    builder, _ = sources.tfds_builder(name, data_dir)
    train_name, test_name = sources.tfds_split_names(builder)
    percent = int(round(100 * (1 - validation_split)))
    split_name = {"test": test_name, "validation": f"{train_name}[{percent}%:]", "all": test_name}[split]
    return streaming.TfdsSplit(builder, split_name, streaming._tfds_count(builder, split_name), limit)


def _digits_arrays(input_shape, validation_split):
    return sources.load_digits(None, input_shape[2], validation_split)  # native 8x8: the protocols resize


def _textured_digits_arrays(input_shape, validation_split):
    from keras_resnets.data.textured_digits import load_textured_digits

    return load_textured_digits(input_shape[:2], input_shape[2], validation_split)  # rendered at the run's size


@dataclass
class SegmentationDatasets:
    """In-memory segmentation splits with the ``Datasets`` interface; masks are the labels.

    The training pipeline is a pure function of ``(seed, epoch)`` (a stateless permutation per
    epoch), so a resumed run sees the batches an uninterrupted one does.
    """

    info: object
    batch_size: int
    augment: str
    seed: int
    validation: object
    test: object
    _train_images: np.ndarray = field(repr=False, default=None)
    _train_masks: np.ndarray = field(repr=False, default=None)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self._train_masks) / self.batch_size)

    def train(self, epochs: int, initial_epoch: int = 0):
        """Training batches of epochs ``initial_epoch .. epochs-1`` (use ``steps_per_epoch``)."""
        import tensorflow as tf

        images, masks = tf.constant(self._train_images), tf.constant(self._train_masks)
        count, batch_size, seed = len(self._train_masks), self.batch_size, self.seed
        mean, std = (tf.constant(v, tf.float32) for v in (self.info.mean, self.info.std))

        def epoch_batches(epoch):
            key = tf.stack([tf.constant(seed, tf.int64), epoch])
            order = tf.argsort(tf.random.stateless_uniform([count], seed=key))
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        def load(idx):
            return (tf.cast(tf.gather(images, idx), tf.float32) - mean) / std, tf.cast(tf.gather(masks, idx), tf.int32)

        ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def _segmentation_eval(images, masks, info, batch_size):
    import tensorflow as tf

    mean, std = np.asarray(info.mean, np.float32), np.asarray(info.std, np.float32)
    ds = tf.data.Dataset.from_tensor_slices((images, masks)).batch(batch_size)
    ds = ds.map(lambda x, y: ((tf.cast(x, tf.float32) - mean) / std, tf.cast(y, tf.int32)))
    return ds.cache().prefetch(tf.data.AUTOTUNE)


def _check_segmentation_keywords(name, augment, expand, channels, image_size):
    if augment not in (None, "none") or expand:
        raise ValueError(f"dataset {name!r} (segmentation) takes no augmentation yet; got augment={augment!r}, "
                         f"expand={expand!r}; use augment='none'")
    if channels not in (None, 3):
        raise ValueError(f"dataset {name!r} has RGB images; channels must be 3, got {channels!r}")
    if image_size is not None and image_size[0] != image_size[1]:
        raise ValueError(f"dataset {name!r} has square images; got image_size {tuple(image_size)}")


def _load_shapes(name, *, batch_size=16, augment="none", expand=0, image_size=None, channels=None, seed=0,
                 num_train=512, num_validation=128, max_shapes=3, **_ignored):
    """The generated shapes: train, validation and test from three different seeds (test as big as
    validation); the validation split is the one ``load_shapes`` and export use."""
    from keras_resnets.data.datasets import DatasetInfo
    from keras_resnets.data.segmentation import SHAPE_CLASSES, make_shapes

    _check_segmentation_keywords(name, augment, expand, channels, image_size)
    size = int(image_size[0]) if image_size is not None else 64
    train = make_shapes(num_train, size, max_shapes, seed=seed)
    validation = make_shapes(num_validation, size, max_shapes, seed=seed + 1_000_003)
    test = make_shapes(num_validation, size, max_shapes, seed=seed + 2_000_003)
    pixels = train[0].reshape(-1, 3).astype("float64")
    mean = tuple(float(v) for v in pixels.mean(0))
    std = tuple(float(max(v, 1e-3)) for v in pixels.std(0))
    info = DatasetInfo(name, len(SHAPE_CLASSES), SHAPE_CLASSES, (size, size, 3), mean, std,
                       num_train=num_train, num_validation=num_validation, num_test=num_validation)
    if not arrays.tensorflow_available():
        return arrays.ArrayDatasets.from_arrays(info, train, validation, test, batch_size=batch_size, seed=seed)
    return SegmentationDatasets(info=info, batch_size=batch_size, augment="none", seed=int(seed),
                                validation=_segmentation_eval(*validation, info, batch_size),
                                test=_segmentation_eval(*test, info, batch_size),
                                _train_images=train[0], _train_masks=train[1])


class _StreamedSegmentation(SegmentationDatasets):
    """TFDS segmentation read as a stream; its test split serves as validation too."""

    def __init__(self, train, test, info, batch_size, seed):
        super().__init__(info=info, batch_size=batch_size, augment="none", seed=seed, validation=test, test=test)
        self._stream = train

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.info.num_train / self.batch_size)

    def train(self, epochs: int, initial_epoch: int = 0):
        return self._stream.repeat(epochs - initial_epoch)


def _load_pets(name, *, data_dir=None, batch_size=16, augment="none", expand=0, image_size=None, channels=None,
               seed=0, download=False, border_label=2, **_ignored):
    from keras_resnets.data.segmentation import load_oxford_pets

    arrays.require_tensorflow(f"dataset {name!r}")
    _check_segmentation_keywords(name, augment, expand, channels, image_size)
    size = int(image_size[0]) if image_size is not None else 128
    train, test, info = load_oxford_pets(data_dir, image_size=size, batch_size=batch_size, download=download,
                                         border_label=border_label, seed=seed)
    return _StreamedSegmentation(train, test, info, batch_size, int(seed))


_ENTRIES = (
    DatasetEntry("digits", CLASSIFICATION, "scikit-learn's 8x8 handwritten digits, embedded (offline)", True,
                 loader=_load_classification, evaluation_split=_in_memory_split(_digits_arrays)),
    DatasetEntry("textured_digits", CLASSIFICATION, "synthetic: the digits drawn through random affine maps on "
                 "coloured textures with clutter; harder (offline)", True, loader=_load_classification,
                 evaluation_split=_in_memory_split(_textured_digits_arrays)),
    DatasetEntry("folder", CLASSIFICATION, "images under data_dir, one sub-folder per class", True,
                 STREAMING_OPTIONS, _load_classification, _folder_split),
    DatasetEntry("cifar10", CLASSIFICATION, "TFDS CIFAR-10", False, STREAMING_OPTIONS, _load_classification,
                 _tfds_split),
    DatasetEntry("cifar100", CLASSIFICATION, "TFDS CIFAR-100", False, STREAMING_OPTIONS, _load_classification,
                 _tfds_split),
    DatasetEntry("imagenette", CLASSIFICATION, "TFDS Imagenette (needs image_size)", False,
                 STREAMING_OPTIONS, _load_classification, _tfds_split),
    DatasetEntry("shapes", SEGMENTATION, "generated circles, rectangles, triangles on textures, exact masks "
                 "(offline)", True, ("num_train", "num_validation", "max_shapes"), _load_shapes),
    DatasetEntry("oxford_iiit_pet", SEGMENTATION, "TFDS Oxford-IIIT Pet trimaps: pet, background, border", False,
                 ("border_label",), _load_pets),
)
DATASETS = {entry.name: entry for entry in _ENTRIES}


def get_dataset(name: str) -> DatasetEntry:
    """The entry of ``name``: a registered one, ``folder`` for a folder path, else TFDS classification.

    Raises:
        ValueError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)} or any TFDS name")
    if name in DATASETS:
        return DATASETS[name]
    if os.path.isdir(os.path.expanduser(name)):
        return DATASETS[sources.FOLDER]
    return DatasetEntry(name, CLASSIFICATION, f"TFDS {name}", False, STREAMING_OPTIONS, _load_classification,
                        _tfds_split)


def list_datasets(task: str | None = None) -> list:
    """Registered names, optionally of one task."""
    return [name for name, entry in DATASETS.items() if task is None or entry.task == task]


def load(name: str, dataset_kwargs: dict | None = None, **keywords) -> DatasetPipelines:
    """Load ``name`` through its registered loader.

    Args:
        name: a dataset name (see :func:`get_dataset`).
        dataset_kwargs: options of the dataset's loader (``DatasetEntry.options``).
        **keywords: ``data_dir``, ``batch_size``, ``augment``, ``expand``, ``image_size``, ``channels``,
            ``validation_split``, ``seed``, ``download``.

    Raises:
        ValueError: an option the dataset does not take (naming the allowed ones) or a bad value.
    """
    entry = get_dataset(name)
    options = dict(dataset_kwargs or {})
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        allowed = ", ".join(entry.options) or "none"
        raise ValueError(f"dataset {name!r} has no option {unknown[0]!r}; allowed: {allowed}")
    if entry.task == SEGMENTATION:
        keywords.pop("validation_split", None)
    return entry.loader(name, **keywords, **options)
