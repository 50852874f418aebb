"""The classification loaders the dataset registry points at: generated (digits, textured digits),
image folders and TFDS. Each takes the keywords of ``load_dataset`` and returns a ``Datasets``.

A loader is chosen by the registry (``keras_resnets.data.registry``), the one place a dataset name
is resolved; nothing here dispatches on a name.
"""
from __future__ import annotations

import numpy as np

from keras_resnets.checks import positive
from keras_resnets.data import arrays as arrays_lib
from keras_resnets.data import augment as augment_lib
from keras_resnets.data import sources, streaming as streaming_lib
from keras_resnets.data.datasets import Datasets, DatasetInfo, _eval_pipeline, channel_stats


def _check_keywords(batch_size, augment: str, expand, channels, cache) -> int:
    """The checks every classification loader makes first; returns ``batch_size`` as an int."""
    batch_size = positive("batch_size", batch_size, optional=False)
    augment_lib.validate_policy(augment)
    if isinstance(expand, bool) or not isinstance(expand, int) or expand < 0:
        raise ValueError(f"expand must be an integer >= 0 (augmented copies to add); got {expand!r}")
    if expand and augment == "none":
        raise ValueError("expand > 0 needs an augmentation policy other than 'none'; got augment='none'")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 or 3; got {channels!r}")
    if cache not in (True, False):  # 1 and 0 pass as True and False, as in the streaming check
        raise ValueError(f"cache must be true or false; got {cache!r}")
    return batch_size


def _size(image_size, augment: str):
    size = tuple(image_size) if image_size is not None else None
    if size is None and augment in augment_lib.IMAGENET_POLICIES:
        size = (224, 224)  # the papers' crop
    return size


def _no_expand_when_streaming(expand: int) -> None:
    if expand:
        raise ValueError(f"expand={expand} (static expansion) needs the images in memory; pass streaming=False "
                         f"or augment on the fly (expand=0)")


def load_generated(name, arrays_of, *, mirrorable=True, data_dir=None, batch_size=128, augment="none", expand=0,
                   image_size=None, channels=None, validation_split=0.1, seed=0, download=False, streaming="auto",
                   cache=False) -> Datasets:
    """An in-memory set (the embedded digits, the synthetic textured digits), always in memory.

    ``arrays_of(image_size, channels, validation_split) -> ImageArrays`` makes its images (the registry's).
    """
    batch_size = _check_keywords(batch_size, augment, expand, channels, cache)
    if not arrays_lib.tensorflow_available():
        arrays_lib.check_policy(augment, expand)
    if streaming is True or augment in augment_lib.IMAGENET_POLICIES:
        raise ValueError(f"the {name} are held in memory and have no source images to crop; got "
                         f"streaming={streaming!r}, augment={augment!r} (allowed: streaming 'auto' or False "
                         f"with augment {', '.join(augment_lib.BATCH_POLICIES)})")
    streaming_lib.use_streaming(streaming, augment, 0, (1, 1, 1))
    arrays = arrays_of(_size(image_size, augment), channels, validation_split)
    return in_memory(name, arrays, batch_size=batch_size, augment=augment, expand=expand, seed=seed,
                     mirrorable=mirrorable)


def load_folder(name, folder, *, mirrorable=True, batch_size=128, augment="none", expand=0, image_size=None,
                channels=None, validation_split=0.1, seed=0, download=False, streaming="auto",
                cache=False) -> Datasets:
    """The images under ``folder``, one sub-folder per class (``name``: the dataset's name in the run)."""
    batch_size = _check_keywords(batch_size, augment, expand, channels, cache)
    if not arrays_lib.tensorflow_available():
        arrays_lib.require_tensorflow(f"dataset {name!r}")
    if not folder:
        raise ValueError("dataset 'folder' needs data_dir=<folder with one sub-folder per class>")
    listing = sources.list_image_folder(folder)
    size = _size(image_size, augment) or (32, 32)
    if streaming_lib.use_streaming(streaming, augment, len(listing[1]), (*size, channels or 3)):
        _no_expand_when_streaming(expand)
        return streaming_lib.stream_folder(
            folder, batch_size=batch_size, augment=augment, image_size=size, channels=channels,
            validation_split=validation_split, seed=seed, cache=cache, listing=listing, name=name)
    arrays = sources.load_folder(folder, size, channels or 3, validation_split, seed)
    return in_memory(name, arrays, batch_size=batch_size, augment=augment, expand=expand, seed=seed,
                     mirrorable=mirrorable)


def load_tfds(name, *, mirrorable=True, data_dir=None, batch_size=128, augment="none", expand=0, image_size=None,
              channels=None, validation_split=0.1, seed=0, download=False, streaming="auto",
              cache=False) -> Datasets:
    """A TFDS image-classification dataset, read from ``data_dir`` (downloaded only with ``download``)."""
    batch_size = _check_keywords(batch_size, augment, expand, channels, cache)
    if not arrays_lib.tensorflow_available():
        arrays_lib.require_tensorflow(f"dataset {name!r}")
    size = _size(image_size, augment)
    builder, _ = sources.tfds_builder(name, data_dir, download)
    if streaming_lib.use_streaming(streaming, augment, _tfds_train_count(builder),
                                   _tfds_image_shape(builder, size, channels)):
        _no_expand_when_streaming(expand)
        return streaming_lib.stream_tfds(
            builder, name, batch_size=batch_size, augment=augment, image_size=size, channels=channels,
            validation_split=validation_split, seed=seed, cache=cache)
    arrays = sources.load_tfds(name, data_dir, size, channels, validation_split, download, seed)
    return in_memory(name, arrays, batch_size=batch_size, augment=augment, expand=expand, seed=seed,
                     mirrorable=mirrorable)


def _tfds_train_count(builder) -> int:
    splits = builder.info.splits
    if "train" in splits:
        return int(splits["train"].num_examples)
    return int(builder.as_dataset(split="train").cardinality())


def _tfds_image_shape(builder, size, channels) -> tuple:
    native = builder.info.features["image"].shape
    height, width = size if size is not None else native[:2]
    return height, width, channels or native[-1]


def in_memory(name: str, arrays, *, batch_size: int, augment: str, expand: int, seed: int,
              mirrorable: bool = True) -> Datasets:
    """``Datasets`` over in-memory ``ImageArrays`` (``ArrayDatasets`` without TensorFlow), normalised by the
    training split's channel statistics; ``expand`` adds augmented copies of the training set once
    (mirrored only when ``mirrorable``)."""
    x_train, y_train = arrays.train
    mean, std = channel_stats(x_train)
    if expand:
        x_train, y_train = augment_lib.expand_statically(x_train, y_train, augment, expand, seed,
                                                         flip=mirrorable)
    info = DatasetInfo(
        name=name, num_classes=len(arrays.class_names), class_names=tuple(arrays.class_names),
        image_shape=tuple(int(d) for d in x_train.shape[1:]), mean=mean, std=std, num_train=len(y_train),
        num_validation=len(arrays.validation[1]), num_test=len(arrays.test[1]), mirrorable=mirrorable,
    )
    if not arrays_lib.tensorflow_available():
        return arrays_lib.ArrayDatasets.from_arrays(info, (x_train, y_train), arrays.validation, arrays.test,
                                                    batch_size=batch_size, augment=augment, seed=seed)
    return Datasets(
        info=info, batch_size=batch_size, augment="none" if expand else augment, seed=int(seed),
        validation=_eval_pipeline(*arrays.validation, info, batch_size),
        test=_eval_pipeline(*arrays.test, info, batch_size),
        _train_images=x_train, _train_labels=y_train.astype(np.int32),
    )
