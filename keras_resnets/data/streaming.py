"""Streaming input: image folders and TFDS splits read, decoded and augmented on the fly (tf.data).

Nothing holds the dataset in memory: a folder is a list of file names (and labels), a TFDS split is
TFDS's own reader. Per epoch:

- **order** — a folder epoch visits its files in a stateless permutation seeded by ``(seed, epoch)``
  (the whole list is shuffled, not a window of it); a TFDS epoch reads the files in a seeded order
  and shuffles a 10,000-example buffer seeded by ``(seed, epoch)``. Either way epoch ``e`` is the
  same whether a run starts at 0 or resumes at ``e``, and equal seeds give equal batches.
- **decode + augment** — one parallel ``map`` (``AUTOTUNE``, order kept), per image with a stateless
  seed ``(seed, epoch * n + position)``: JPEGs decode only the window the augmentation crops.
- **batch, normalise, prefetch** — batch policies of ``augment.py`` (``crop_flip`` ...) run on the
  batch after decoding; ``cache=True`` keeps the *encoded* files of a small folder in memory
  (about the size of the folder on disk) and the decoded evaluation splits after their first pass.

Unreadable files (truncated or corrupt JPEGs, non-images with an image extension) are **skipped
with a warning naming each file** (``keras-resnets: warning: skipping unreadable image PATH``) on
stderr, wherever they show up: in the sample that measures the channel statistics, in training
epochs and in the evaluation splits. Every pipeline still yields its announced number of batches
(``steps_per_epoch`` per epoch, ``ceil(n / batch)`` per evaluation split): batches lost to skipped
files are filled from the start of the split again.

With ``shard(num_shards, index)`` a process reads only every ``num_shards``-th file (TFDS: its
``tfds.even_splits`` part), which is what ``--distribute data_parallel`` uses on several processes.
"""
from __future__ import annotations

import dataclasses
import math
import sys
from dataclasses import dataclass

import numpy as np
try:
    import tensorflow as tf
except ImportError:  # JAX-only installs (keras_resnets.data.arrays); tf.data pipelines need it
    tf = None

from keras_resnets.data import augment as augment_lib
from keras_resnets.data import imagenet
from keras_resnets.data.datasets import Datasets, DatasetInfo, _normalizer, _options
from keras_resnets.data.sources import UNREADABLE_PREFIX, DatasetUnavailableError, list_image_folder, tfds_split_names

STREAMING_MODES = ("auto", True, False)
# Above this many decoded training bytes, "auto" streams (CIFAR-10's 50,000 32x32 RGB images,
# 154 MB, stay in memory; 2,000 images of 224x224 do not).
STREAMING_THRESHOLD_BYTES = 256 * 2**20
STATS_SAMPLE = 256
TFDS_SHUFFLE_BUFFER = 10_000


def holdout_indices(labels: np.ndarray, fraction: float, seed: int):
    """Stratified ``(train, held_out)`` index arrays, the same for a given ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); got {fraction}")
    from sklearn.model_selection import train_test_split

    train, held_out = train_test_split(np.arange(len(labels)), test_size=fraction, random_state=seed,
                                       stratify=labels)
    return np.sort(train), np.sort(held_out)


def use_streaming(streaming, policy: str, count: int, image_shape) -> bool:
    """Whether ``load_dataset`` streams: ``streaming`` itself, or for ``"auto"`` when the policy
    needs the source images (ImageNet policies) or the decoded training set exceeds
    ``STREAMING_THRESHOLD_BYTES``.

    Args:
        streaming: ``"auto"``, ``True`` or ``False``.
        policy: augmentation policy.
        count: training images.
        image_shape: ``(h, w, c)`` of the decoded images (``None`` entries: unknown, stream).
    """
    if streaming not in STREAMING_MODES:
        raise ValueError(f"streaming must be one of 'auto', True, False; got {streaming!r}")
    if streaming is False and policy in imagenet.TRAIN_POLICIES:
        raise ValueError(f"augment={policy!r} crops the source images on the fly and needs streaming; "
                         f"got streaming=False")
    if streaming != "auto":
        return bool(streaming)
    if policy in imagenet.TRAIN_POLICIES or any(d is None for d in image_shape):
        return True
    return count * int(np.prod(image_shape)) > STREAMING_THRESHOLD_BYTES


@dataclass(frozen=True)
class FileSplit:
    """Image files and their labels; ``cache`` holds their encoded bytes in memory when given."""

    files: np.ndarray
    labels: np.ndarray
    cache: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def shard(self, num_shards: int, index: int) -> "FileSplit":
        """Every ``num_shards``-th file from ``index``; every shard gets the same count (the
        remainder is left out), so that all processes run the same number of steps."""
        count = len(self) // num_shards
        pick = slice(index, index + num_shards * count, num_shards)
        cache = None if self.cache is None else self.cache[pick]
        return FileSplit(self.files[pick], self.labels[pick], cache)

    def with_cache(self) -> "FileSplit":
        """A copy holding every file's encoded bytes (read once, now)."""
        contents = []
        for file in self.files:
            with open(file, "rb") as f:
                contents.append(f.read())
        return FileSplit(self.files, self.labels, np.asarray(contents, dtype=object))

    def examples(self, order=None) -> tf.data.Dataset:
        """``(position, index, encoded bytes, label)`` in ``order`` (default: file order)."""
        files, labels = tf.constant(self.files), tf.constant(self.labels)
        cache = None if self.cache is None else tf.constant(list(self.cache), tf.string)
        order = tf.range(len(self), dtype=tf.int64) if order is None else order

        def read(position, index):
            contents = tf.gather(cache, index) if cache is not None else tf.io.read_file(tf.gather(files, index))
            return position, index, contents, tf.gather(labels, index)

        return tf.data.Dataset.from_tensor_slices(order).enumerate().map(read)


@dataclass(frozen=True)
class TfdsSplit:
    """A split of a prepared TFDS builder (``split`` may be a sliced or ``even_splits`` split)."""

    builder: object
    split: object
    count: int
    limit: int | None = None  # read only the first ``limit`` examples

    def __len__(self) -> int:
        return self.count if self.limit is None else min(self.count, self.limit)

    def shard(self, num_shards: int, index: int) -> "TfdsSplit":
        import tensorflow_datasets as tfds

        part = tfds.even_splits(self.split, n=num_shards, drop_remainder=True)[index]
        return TfdsSplit(self.builder, part, _tfds_count(self.builder, part))

    def dataset(self, seed: int | None = None) -> tf.data.Dataset:
        """``(uint8 image, int32 label)`` read by TFDS (file order seeded when ``seed`` is given)."""
        import tensorflow_datasets as tfds

        config = tfds.ReadConfig(shuffle_seed=seed, try_autocache=False)
        ds = self.builder.as_dataset(split=self.split, as_supervised=True, shuffle_files=seed is not None,
                                     read_config=config)
        if self.limit is not None:
            ds = ds.take(self.limit)
        return ds.map(lambda image, label: (image, tf.cast(label, tf.int32)))

    def examples(self, seed: int | None = None, epoch=None) -> tf.data.Dataset:
        """``(position, -1, image, label)``; shuffled from ``(seed, epoch)`` when both are given.

        ``epoch`` must be a Python int: ``shuffle`` cannot take a tensor seed when TensorFlow's
        global seed is 0 (``keras.utils.set_random_seed(0)``, what ``train(seed=0)`` does).
        """
        ds = self.dataset(seed)
        if epoch is not None:
            ds = ds.shuffle(TFDS_SHUFFLE_BUFFER, seed=int(seed) * 1_000_003 + int(epoch))
        return ds.enumerate().map(lambda position, example: (position, tf.constant(-1, tf.int64), *example))


def _warn_unreadable(paths) -> None:
    """Print the skip warning for ``paths`` (a 1-D string tensor) inside a tf.data function."""
    line = tf.strings.join([UNREADABLE_PREFIX, tf.strings.reduce_join(paths, separator=", ")], separator=" ")
    tf.print(line, output_stream=sys.stderr)


def skip_unreadable(examples: tf.data.Dataset, split: FileSplit, order, image_shape) -> tf.data.Dataset:
    """Drop the elements whose decoding failed and name their files on stderr.

    ``examples`` yields ``(position, index, image, label)`` in position order; a file whose decoding
    raised is missing from it after ``ignore_errors``. A scan finds the gaps in the positions (an
    end marker closes the last one) and prints the files of the missing positions.

    Args:
        examples: decoded elements (before ``ignore_errors``).
        split: the files (for their names).
        order: the file index of every position (int64 vector), or ``None`` for file order.
        image_shape: shape of one decoded image (for the end marker).
    """
    count = len(split)
    files = tf.constant(split.files)
    order = tf.range(count, dtype=tf.int64) if order is None else order
    end = tf.data.Dataset.from_tensors((tf.constant(count, tf.int64), tf.constant(-1, tf.int64),
                                        tf.zeros(image_shape, tf.float32), tf.constant(-1, tf.int32)))

    def check(last, element):
        position = element[0]

        def warn():
            _warn_unreadable(tf.gather(files, order[last + 1:position]))
            return tf.constant(0)

        tf.cond(position > last + 1, warn, lambda: tf.constant(0))
        return position, element

    return examples.ignore_errors().concatenate(end).scan(tf.constant(-1, tf.int64), check).filter(
        lambda position, index, image, label: position < count)


@dataclass
class StreamingDatasets(Datasets):
    """A ``Datasets`` whose splits are read and decoded on the fly (no image arrays).

    Same interface as the in-memory ``Datasets``: ``train(epochs, initial_epoch)``,
    ``steps_per_epoch``, ``validation``, ``test``, ``info``.
    """

    _train_split: object = dataclasses.field(repr=False, default=None)
    _validation_split: object = dataclasses.field(repr=False, default=None)
    _test_split: object = dataclasses.field(repr=False, default=None)
    drop_remainder: bool = False
    cache: bool = False

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch (the last one may be smaller unless ``drop_remainder``)."""
        count = len(self._train_split)
        return count // self.batch_size if self.drop_remainder else math.ceil(count / self.batch_size)

    @property
    def _size(self) -> tuple:
        return tuple(self.info.image_shape[:2])

    @property
    def _channels(self) -> int:
        return int(self.info.image_shape[2])

    def _train_image(self, source, seed):
        if self.augment in imagenet.TRAIN_POLICIES:
            return imagenet.train_image(source, self.augment, seed, self._size[0], self._channels)
        return resized_image(source, self._size, self._channels)

    def _epoch_examples(self, epoch):
        split, seed = self._train_split, self.seed
        if isinstance(split, TfdsSplit):
            return split.examples(seed, epoch), None
        key = tf.stack([tf.constant(seed, tf.int64), epoch])
        order = tf.argsort(tf.random.stateless_uniform([len(split)], seed=key))
        order = tf.cast(order, tf.int64)
        return split.examples(order), order

    def train(self, epochs: int, initial_epoch: int = 0) -> tf.data.Dataset:
        """Training batches of epochs ``initial_epoch .. epochs-1``, back to back, decoded on the fly.

        Args:
            epochs: index of the last epoch + 1.
            initial_epoch: first epoch to produce.
        """
        count, batch_size, steps, seed = len(self._train_split), self.batch_size, self.steps_per_epoch, self.seed
        mean, std = _normalizer(self.info)
        image_shape = self.info.image_shape
        batch_policy = "none" if self.augment in imagenet.TRAIN_POLICIES else self.augment

        def epoch_batches(epoch):
            examples, order = self._epoch_examples(epoch)

            def decode(position, index, source, label):
                image_seed = tf.stack([tf.constant(seed + 1, tf.int64), epoch * count + position])
                return position, index, self._train_image(source, image_seed), label

            decoded = examples.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            if isinstance(self._train_split, FileSplit):
                decoded = skip_unreadable(decoded, self._train_split, order, image_shape)
            batches = decoded.map(lambda p, i, image, label: (image, label)).batch(
                batch_size, drop_remainder=self.drop_remainder)
            return batches.enumerate().map(lambda b, batch: (epoch * steps + b, batch))

        def finish(step, batch):
            images, labels = batch
            images = augment_lib.augment_batch(images, batch_policy, tf.stack([tf.constant(seed + 1, tf.int64), step]))
            return (images - mean) / std, labels

        if isinstance(self._train_split, TfdsSplit) and epochs > initial_epoch:
            ds = _concatenate([epoch_batches(epoch) for epoch in range(initial_epoch, epochs)])
        else:
            ds = tf.data.Dataset.range(initial_epoch, epochs).flat_map(epoch_batches)
        ds = exactly(ds, steps * max(epochs - initial_epoch, 0))
        ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())

    def _eval_image(self, source):
        if self.augment in imagenet.TRAIN_POLICIES:
            return imagenet.eval_image(source, self._size[0], self._channels)
        return resized_image(source, self._size, self._channels)

    def eval_pipeline(self, split) -> tf.data.Dataset:
        """Batched, normalised pipeline of an evaluation split (centre crop for ImageNet policies)."""
        return eval_pipeline(split, self._eval_image, self.info, self.batch_size, self.drop_remainder, self.cache)

    def shard(self, num_shards: int, index: int) -> "StreamingDatasets":
        """This process's part of every split, in batches of ``batch_size / num_shards``.

        Every shard has the same number of images and full batches only, so that all processes
        run the same number of steps.

        Args:
            num_shards: processes.
            index: this process, ``0 .. num_shards - 1``.

        Raises:
            ValueError: ``index`` out of range, or ``batch_size`` not divisible by ``num_shards``.
        """
        if not 0 <= index < num_shards:
            raise ValueError(f"shard index must be in 0..{num_shards - 1}; got {index}")
        if self.batch_size % num_shards:
            raise ValueError(f"batch_size {self.batch_size} is not divisible by {num_shards} shards")
        per_shard = self.batch_size // num_shards
        for name in ("_train_split", "_validation_split", "_test_split"):
            if len(getattr(self, name)) // num_shards < per_shard:
                raise ValueError(f"{name.strip('_').replace('_split', '')} split of {len(getattr(self, name))} "
                                 f"images is too small for {num_shards} shards of {per_shard}-image batches; "
                                 f"use a smaller batch_size")
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields.update(
            batch_size=per_shard,
            drop_remainder=True,
            _train_split=self._train_split.shard(num_shards, index),
            _validation_split=self._validation_split.shard(num_shards, index),
            _test_split=self._test_split.shard(num_shards, index),
        )
        return _with_eval_pipelines(StreamingDatasets(**fields))

    def full_batches(self) -> "StreamingDatasets":
        """The same splits in full batches only (for several devices sharing each batch)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["drop_remainder"] = True
        return _with_eval_pipelines(StreamingDatasets(**fields))


def _concatenate(datasets: list) -> tf.data.Dataset:
    """The datasets back to back, as a balanced tree of ``concatenate`` (depth log2 of their count,
    so that an element passes through few levels even for hundreds of epochs)."""
    if len(datasets) == 1:
        return datasets[0]
    middle = len(datasets) // 2
    return _concatenate(datasets[:middle]).concatenate(_concatenate(datasets[middle:]))


def _with_eval_pipelines(data: StreamingDatasets) -> StreamingDatasets:
    data.validation = data.eval_pipeline(data._validation_split)
    data.test = data.eval_pipeline(data._test_split)
    return data


def exactly(batches: tf.data.Dataset, count: int) -> tf.data.Dataset:
    """``count`` batches, always: the places of batches lost to skipped files are filled from the
    start again. Equal batch counts keep the processes of a distributed run in step (a process
    with one batch less would wait forever), and a known cardinality lets Keras see the end of
    an evaluation split without warning that the input "ran out of data"."""
    return batches.repeat().take(count).apply(tf.data.experimental.assert_cardinality(count))


def resized_image(source, size, channels: int) -> tf.Tensor:
    """The whole image resized to ``size`` (aspect not kept, as the in-memory path does), float32."""
    image = tf.image.resize(imagenet.full_image(source, channels), size)
    image.set_shape([*size, channels])
    return image


def eval_pipeline(split, image_fn, info: DatasetInfo, batch_size: int, drop_remainder: bool = False,
                  cache: bool = False) -> tf.data.Dataset:
    """Decode ``split`` in file order with ``image_fn(source)``, batch and normalise it.

    Args:
        split: ``FileSplit`` or ``TfdsSplit``.
        image_fn: source -> float32 image in 0..255.
        info: the dataset's info (normalisation, image shape).
        batch_size: batch size.
        drop_remainder: full batches only.
        cache: keep the decoded, normalised batches in memory after the first pass.
    """
    mean, std = _normalizer(info)
    examples = split.examples()
    decoded = examples.map(lambda p, i, source, label: (p, i, image_fn(source), label),
                           num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if isinstance(split, FileSplit):
        decoded = skip_unreadable(decoded, split, None, info.image_shape)
    ds = decoded.map(lambda p, i, image, label: (image, label)).batch(batch_size, drop_remainder=drop_remainder)
    count = len(split)
    ds = exactly(ds, count // batch_size if drop_remainder else math.ceil(count / batch_size))
    ds = ds.map(lambda x, y: ((x - mean) / std, y), num_parallel_calls=tf.data.AUTOTUNE)
    if cache:
        ds = ds.cache()
    return ds.prefetch(tf.data.AUTOTUNE).with_options(_options())


def sample_stats(split, image_fn, seed: int, image_shape, sample: int = STATS_SAMPLE):
    """Per-channel mean and std (0..255) of up to ``sample`` training images, decoded as for evaluation.

    A seeded sample keeps start-up time independent of the dataset's size (256 images estimate the
    channel means within about 1 grey level for natural photos); the images are decoded in
    parallel and reduced to per-channel sums as they come, so memory stays small.
    """
    if isinstance(split, FileSplit):
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(len(split), size=min(sample, len(split)), replace=False))
        sub = FileSplit(split.files[pick], split.labels[pick], None if split.cache is None else split.cache[pick])
        decoded = sub.examples().map(lambda p, i, source, label: (p, i, image_fn(source), label),
                                     num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        images = skip_unreadable(decoded, sub, None, image_shape).map(lambda p, i, image, label: image)
    else:
        images = split.dataset().take(sample).map(lambda image, label: image_fn(image),
                                                  num_parallel_calls=tf.data.AUTOTUNE)
    channels = image_shape[-1]

    def moments(image):
        pixels = tf.reshape(tf.cast(image, tf.float64), [-1, channels])
        return tf.reduce_sum(pixels, 0), tf.reduce_sum(pixels * pixels, 0), tf.cast(tf.shape(pixels)[0], tf.float64)

    zeros = tf.zeros([channels], tf.float64)
    total, squares, count = images.map(moments).reduce(
        (zeros, zeros, tf.constant(0.0, tf.float64)), lambda acc, m: (acc[0] + m[0], acc[1] + m[1], acc[2] + m[2]))
    if float(count) == 0:
            raise DatasetUnavailableError(f"none of the {min(sample, len(split))} sampled training images could be read")
    mean = total.numpy() / float(count)
    std = np.sqrt(np.maximum(squares.numpy() / float(count) - mean**2, 0.0))
    return tuple(round(float(v), 4) for v in mean), tuple(round(float(max(v, 1e-3)), 4) for v in std)


def _channel_count(channels, default: int) -> int:
    return int(channels or default)


def _check_square(policy: str, size) -> None:
    if policy in imagenet.TRAIN_POLICIES and size[0] != size[1]:
        raise ValueError(f"augment={policy!r} makes square crops; got image_size={tuple(size)}")


def stream_folder(folder: str, *, batch_size: int, augment: str, image_size, channels, validation_split: float,
                  seed: int, cache: bool = False, listing=None, name: str = "folder") -> StreamingDatasets:
    """Stream an image folder (one sub-folder per class); a stratified hold-out is the validation
    and test split, as for the in-memory folder.

    Args:
        folder: root folder.
        batch_size: batch size.
        augment: policy (batch policies of ``augment.py`` or ``imagenet.TRAIN_POLICIES``).
        image_size: ``(h, w)`` of the pipeline's images.
        channels: 1 or 3.
        validation_split: held-out share.
        seed: seed of the hold-out, the order and the augmentation.
        cache: keep the encoded files (and the decoded evaluation batches) in memory.
        listing: ``list_image_folder(folder)`` if already done.
        name: dataset name for ``DatasetInfo``.
    """
    _check_square(augment, image_size)
    files, labels, class_names = listing or list_image_folder(folder)
    train_idx, held_idx = holdout_indices(labels, validation_split, seed)
    train = FileSplit(files[train_idx], labels[train_idx])
    held_out = FileSplit(files[held_idx], labels[held_idx])
    if cache:
        train, held_out = train.with_cache(), held_out.with_cache()
    return _streaming_datasets(name, class_names, train, held_out, held_out, batch_size=batch_size, augment=augment,
                               image_size=image_size, channels=_channel_count(channels, 3), seed=seed, cache=cache)


def stream_tfds(builder, name: str, *, batch_size: int, augment: str, image_size, channels, validation_split: float,
                seed: int, cache: bool = False) -> StreamingDatasets:
    """Stream a prepared TFDS image-classification dataset through ``builder.as_dataset``.

    Training data is the first ``1 - validation_split`` of ``train`` (a TFDS slice, not stratified:
    TFDS shuffled the examples when it prepared them), validation the rest; test data is ``test``,
    or ``validation`` where there is no test split.
    """
    _check_square(augment, image_size)
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); got {validation_split}")
    percent = int(round(100 * (1 - validation_split)))
    train_name, test_name = tfds_split_names(builder)
    splits = [f"{train_name}[:{percent}%]", f"{train_name}[{percent}%:]", test_name]
    train, validation, test = (TfdsSplit(builder, s, _tfds_count(builder, s)) for s in splits)
    feature = builder.info.features["image"]
    native = feature.shape
    if image_size is None:
        if native[0] is None:
            raise ValueError(f"dataset {name!r} has images of varying size; pass image_size=(height, width)")
        image_size = tuple(native[:2])
    return _streaming_datasets(name, list(builder.info.features["label"].names), train, validation, test,
                               batch_size=batch_size, augment=augment, image_size=image_size,
                               channels=_channel_count(channels, native[-1] or 3), seed=seed, cache=cache)


def _tfds_count(builder, split) -> int:
    count = int(builder.as_dataset(split=split, as_supervised=True).cardinality())
    if count < 0:
        raise ValueError(f"TFDS split {split!r} of {builder.name!r} has an unknown number of examples")
    return count


def _streaming_datasets(name, class_names, train, validation, test, *, batch_size, augment, image_size, channels,
                        seed, cache) -> StreamingDatasets:
    size = tuple(int(s) for s in image_size)
    probe = DatasetInfo(name, len(class_names), tuple(class_names), (*size, channels), (0.0,) * channels,
                        (1.0,) * channels)
    data = StreamingDatasets(info=probe, batch_size=batch_size, augment=augment, seed=int(seed), validation=None,
                             test=None, _train_split=train, _validation_split=validation, _test_split=test,
                             cache=cache)
    mean, std = sample_stats(train, data._eval_image, seed, probe.image_shape)
    data.info = dataclasses.replace(probe, mean=mean, std=std, num_train=len(train), num_validation=len(validation),
                                    num_test=len(test))
    return _with_eval_pipelines(data)
