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

from keras_resnets.tasks import CLASSIFICATION, SEGMENTATION, TASKS, get_task


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
        mirrorable: a left-right mirror keeps an image's label (``False`` for the digits: a mirrored
            digit is another symbol, or none); ``crop_flip`` then crops only.
    """

    name: str
    task: str
    description: str
    offline: bool
    options: tuple = ()
    loader: object = field(default=None, repr=False, compare=False)
    evaluation_split: object = field(default=None, repr=False, compare=False)
    mirrorable: bool = True


# Options of the folder and TFDS loaders (``--dataset-arg streaming=true``): decode on the fly or in
# memory ("auto" decides by size, see keras_resnets.data.streaming), and caching of a streamed set.
STREAMING_OPTIONS = ("streaming", "cache")


def _folder_of(name: str, data_dir) -> str:
    """The image folder of ``folder`` (``data_dir``) or of a folder path given as the name."""
    return data_dir if name == sources.FOLDER else name


def _generated(arrays_of):
    """The loader of an in-memory set: ``arrays_of(image_size, channels, validation_split) -> ImageArrays``."""
    def load(name, **keywords):
        from keras_resnets.data import loaders  # the tf.data pipelines: imported when first loaded

        return loaders.load_generated(name, arrays_of, **keywords)

    return load


def _load_folder(name, *, data_dir=None, **keywords):
    from keras_resnets.data import loaders

    return loaders.load_folder(name, _folder_of(name, data_dir), **keywords)


def _load_tfds(name, **keywords):
    from keras_resnets.data import loaders

    return loaders.load_tfds(name, **keywords)


def _textured_digits(image_size, channels, validation_split):
    from keras_resnets.data.textured_digits import load_textured_digits

    return load_textured_digits(image_size or (32, 32), channels or 3, validation_split)


_DIGITS = _generated(lambda image_size, channels, split: sources.load_digits(image_size or (32, 32), channels or 1,
                                                                              split))
_TEXTURED_DIGITS = _generated(_textured_digits)


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

    files, labels, _ = sources.list_image_folder(_folder_of(name, data_dir))
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
    validation)."""
    from keras_resnets.data.datasets import DatasetInfo, channel_stats
    from keras_resnets.data.segmentation import SHAPE_CLASSES, make_shapes

    _check_segmentation_keywords(name, augment, expand, channels, image_size)
    size = int(image_size[0]) if image_size is not None else 64
    train = make_shapes(num_train, size, max_shapes, seed=seed)
    validation = make_shapes(num_validation, size, max_shapes, seed=seed + 1_000_003)
    test = make_shapes(num_validation, size, max_shapes, seed=seed + 2_000_003)
    mean, std = channel_stats(train[0])
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
                 loader=_DIGITS, evaluation_split=_in_memory_split(_digits_arrays), mirrorable=False),
    DatasetEntry("textured_digits", CLASSIFICATION, "synthetic: the digits drawn through random affine maps on "
                 "coloured textures with clutter; harder (offline)", True, loader=_TEXTURED_DIGITS,
                 evaluation_split=_in_memory_split(_textured_digits_arrays), mirrorable=False),
    DatasetEntry("folder", CLASSIFICATION, "images under data_dir, one sub-folder per class", True,
                 STREAMING_OPTIONS, _load_folder, _folder_split),
    DatasetEntry("cifar10", CLASSIFICATION, "TFDS CIFAR-10", False, STREAMING_OPTIONS, _load_tfds,
                 _tfds_split),
    DatasetEntry("cifar100", CLASSIFICATION, "TFDS CIFAR-100", False, STREAMING_OPTIONS, _load_tfds,
                 _tfds_split),
    DatasetEntry("imagenette", CLASSIFICATION, "TFDS Imagenette (needs image_size)", False,
                 STREAMING_OPTIONS, _load_tfds, _tfds_split),
    DatasetEntry("shapes", SEGMENTATION, "generated circles, rectangles, triangles on textures, exact masks "
                 "(offline)", True, ("num_train", "num_validation", "max_shapes"), _load_shapes),
    DatasetEntry("oxford_iiit_pet", SEGMENTATION, "TFDS Oxford-IIIT Pet trimaps: pet, background, border", False,
                 ("border_label",), _load_pets),
)
DATASETS = {entry.name: entry for entry in _ENTRIES}


def get_dataset(name: str) -> DatasetEntry:
    """The entry of ``name``: a registered one, ``folder`` for a folder path, else TFDS classification.

    Raises:
        ValueError: ``name`` is none of these (the message lists the registered names).
    """
    unknown = (f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}, a folder of class sub-folders "
               "or a TFDS image-classification name")
    if not isinstance(name, str) or not name:
        raise ValueError(unknown)
    if name in DATASETS:
        return DATASETS[name]
    if os.path.isdir(os.path.expanduser(name)):
        return DATASETS[sources.FOLDER]
    if not sources.is_tfds_name(name):
        raise ValueError(unknown)
    return DatasetEntry(name, CLASSIFICATION, f"TFDS {name}", False, STREAMING_OPTIONS, _load_tfds,
                        _tfds_split)


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
) -> DatasetPipelines:
    """Load a dataset by name into training, validation and test pipelines (its registered loader).

    Args:
        name: ``"digits"`` (embedded, offline), ``"textured_digits"`` (synthetic, generated offline),
            ``"folder"`` (images under ``data_dir``, one sub-folder per class), ``"shapes"``, or a TFDS
            name (``cifar10``, ``cifar100``, ``imagenette``, ...): see :func:`get_dataset`.
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
    entry = get_dataset(name)
    return entry.loader(
        name, mirrorable=entry.mirrorable, data_dir=data_dir, batch_size=batch_size, augment=augment, expand=expand,
        image_size=image_size, channels=channels, validation_split=validation_split, seed=seed, download=download,
        streaming=streaming, cache=cache)


def flips_preserve_labels(name: str) -> bool:
    """Whether a left-right mirror keeps the label of dataset ``name``'s images (not for digits)."""
    return get_dataset(name).mirrorable


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
    return entry.loader(name, mirrorable=entry.mirrorable, **keywords, **options)


def task_of(model: str, dataset: str):
    """The ``Task`` of ``dataset`` (its entry's), checked against the model's family.

    Raises:
        ValueError: unknown model, or a segmentation model on a classification dataset (or the reverse).
    """
    from keras_resnets.models import get_entry

    entry, task = get_entry(model), get_task(get_dataset(dataset).task)
    if not task.fits_model_family(entry.family):
        kind = next(name for name in TASKS if get_task(name).fits_model_family(entry.family))
        raise ValueError(f"model {model!r} is a {kind} model but dataset {dataset!r} is a {task.name} dataset; "
                         f"{kind} datasets: {', '.join(list_datasets(kind))}")
    return task
