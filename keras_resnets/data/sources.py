"""Where images come from: the embedded digits, TFDS datasets, and folders of images.

Every source returns in-memory uint8 arrays (``ImageArrays``) of one common image size, split into
train / validation / test. Holding the images in memory is what lets the training pipeline be a
pure function of ``(seed, epoch)``: a resumed run sees exactly the batches an uninterrupted one does.
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np

DIGITS = "digits"
FOLDER = "folder"
DEFAULT_DATA_DIR = os.environ.get("TFDS_DATA_DIR", os.path.join("~", "tensorflow_datasets"))


class DatasetUnavailableError(FileNotFoundError):
    """A dataset's files are not on this machine (and may not be downloaded)."""


@dataclass
class ImageArrays:
    """Images (uint8, ``(n, h, w, c)``) and int32 labels of the three splits, plus class names."""

    train: tuple
    validation: tuple
    test: tuple
    class_names: list


def _split_validation(images, labels, fraction: float, seed: int):
    """Hold out a stratified ``fraction`` of ``(images, labels)``, the same for a given ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); got {fraction}")
    from sklearn.model_selection import train_test_split

    x_train, x_val, y_train, y_val = train_test_split(
        images, labels, test_size=fraction, random_state=seed, stratify=labels
    )
    return (x_train, y_train), (x_val, y_val)


def _resize(images: np.ndarray, image_size) -> np.ndarray:
    """Bilinear resize of a uint8 batch to ``image_size`` (h, w); returns uint8."""
    from keras_resnets.data import arrays

    if image_size is None or tuple(images.shape[1:3]) == tuple(image_size):
        return images
    if not arrays.tensorflow_available():
        return arrays.resize_bilinear(images, tuple(image_size))
    import tensorflow as tf

    out = []
    for start in range(0, len(images), 2048):
        chunk = tf.image.resize(tf.convert_to_tensor(images[start : start + 2048], tf.float32), image_size)
        out.append(np.clip(np.rint(chunk.numpy()), 0, 255).astype(np.uint8))
    return np.concatenate(out)


def _set_channels(images: np.ndarray, channels) -> np.ndarray:
    if channels is None or images.shape[-1] == channels:
        return images
    if images.shape[-1] == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if images.shape[-1] == 3 and channels == 1:
        gray = images.astype(np.float32) @ np.array([0.2989, 0.587, 0.114], np.float32)
        return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]
    raise ValueError(f"cannot convert {images.shape[-1]}-channel images to channels={channels}; allowed: 1, 3")


def load_digits(image_size=(32, 32), channels: int = 1, validation_split: float = 0.1,
                test_split: float = 0.2) -> ImageArrays:
    """scikit-learn's bundled handwritten digits (1,797 real 8x8 images, 10 classes), no download.

    Pixel values 0..16 are scaled to 0..255 and the images resized (bilinear) to ``image_size``.
    The test split is fixed (stratified, seed 0) so results are comparable across runs.

    Args:
        image_size: ``(height, width)`` after resizing.
        channels: 1, or 3 to repeat the grey channel for RGB models.
        validation_split: fraction of the training images held out for validation.
        test_split: fraction of all images used for testing.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.clip(np.rint(bunch.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)[..., None]
    labels = bunch.target.astype(np.int32)
    images = _set_channels(_resize(images, image_size), channels)
    (x_rest, y_rest), (x_test, y_test) = _split_validation(images, labels, test_split, seed=0)
    train, validation = _split_validation(x_rest, y_rest, validation_split, seed=0)
    return ImageArrays(train, validation, (x_test, y_test), [str(d) for d in range(10)])


def _tfds_missing_message(name: str, data_dir: str, detail: str) -> str:
    return (
        f"dataset {name!r} is not prepared in data dir {data_dir!r} ({detail}). "
        f"On a machine with network run `tfds build {name} --data_dir {data_dir}` and copy the "
        f"resulting {os.path.join(data_dir, name)} folder here, or pass download=True "
        f"(--download) where there is network; for manual-download datasets put the archives in "
        f"{os.path.join(data_dir, 'downloads', 'manual')} and run "
        f"`tfds build {name} --data_dir {data_dir} --manual_dir {os.path.join(data_dir, 'downloads', 'manual')}`"
    )


def _tfds_split(builder, split: str, image_size, channels):
    """Read one TFDS split into uint8 arrays (resized when ``image_size`` is given)."""
    import tensorflow as tf
    from tqdm import tqdm

    def prepare(image, label):
        if channels is not None and image.shape[-1] != channels:
            image = tf.image.grayscale_to_rgb(image) if channels == 3 else tf.image.rgb_to_grayscale(image)
        if image_size is not None:
            image = tf.cast(tf.clip_by_value(tf.round(tf.image.resize(image, image_size)), 0, 255), tf.uint8)
        return image, tf.cast(label, tf.int32)

    ds = builder.as_dataset(split=split, as_supervised=True).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    total = int(ds.cardinality()) if int(ds.cardinality()) >= 0 else None
    xs, ys = [], []
    with tqdm(total=total, desc=f"reading {builder.name}[{split}]", unit="img", leave=False,
              disable=not sys.stderr.isatty()) as bar:  # no bar fragments in a redirected log
        for x, y in ds.batch(1024).as_numpy_iterator():
            xs.append(x)
            ys.append(y)
            bar.update(len(y))
    return np.concatenate(xs), np.concatenate(ys)


def ensure_prepared(builder, name: str, data_dir: str, download: bool) -> None:
    """Make sure a TFDS ``builder``'s data can be read: download it if allowed, else explain.

    Whether the data is there is asked of TFDS itself (``as_dataset`` on the first split), not of
    the files on disk, so TFDS's offline test harness (``tfds.testing.mock_data``), which serves
    generated examples without any prepared files, passes the check like a prepared dataset.

    Raises:
        DatasetUnavailableError: not prepared and ``download`` is off, or the download failed; the
            message says where the files go and how to prepare them.
    """
    if _tfds_readable(builder):
        return
    if not download:
        raise DatasetUnavailableError(_tfds_missing_message(name, data_dir, "no prepared files"))
    try:
        builder.download_and_prepare()
    except Exception as err:  # no network: urllib/requests errors from deep inside TFDS
        raise DatasetUnavailableError(
            _tfds_missing_message(name, data_dir, f"download failed: {type(err).__name__}")
        ) from None


def _tfds_readable(builder) -> bool:
    if builder.is_prepared():
        return True
    try:
        builder.as_dataset(split=tfds_split_names(builder)[0])
    except (AssertionError, ValueError, KeyError, OSError):  # TFDS: "could not find data in ..."
        return False
    return True


def tfds_split_names(builder) -> tuple:
    """``(train split, test split)`` names: ``test``, or ``validation`` where there is no test split.

    Datasets whose split list is unknown (TFDS's mock harness) are taken to have ``train``/``test``.
    """
    splits = builder.info.splits
    if not splits:
        return "train", "test"
    return "train", "test" if "test" in splits else "validation"


def is_tfds_name(name: str) -> bool:
    """Whether TFDS has a builder called ``name`` (imports TFDS; reads no data)."""
    import tensorflow_datasets as tfds

    try:
        tfds.builder_cls(name.split(":")[0].split("/")[0])
    except Exception:  # tfds raises DatasetNotFoundError and friends for unknown names
        return False
    return True


def tfds_builder(name: str, data_dir=None, download: bool = False):
    """The TFDS builder of ``name`` in ``data_dir``, its data checked readable (``ensure_prepared``).

    Returns:
        ``(builder, data_dir)``.

    Raises:
        ValueError: unknown name.
        DatasetUnavailableError: the dataset is not prepared and ``download`` is off.
    """
    import tensorflow_datasets as tfds

    data_dir = os.path.expanduser(data_dir or DEFAULT_DATA_DIR)
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as err:  # tfds raises DatasetNotFoundError and friends for unknown names
        raise ValueError(f"unknown TFDS dataset {name!r} ({type(err).__name__})") from None
    ensure_prepared(builder, name, data_dir, download)
    return builder, data_dir


def load_tfds(name: str, data_dir=None, image_size=None, channels=None, validation_split: float = 0.1,
              download: bool = False, seed: int = 0) -> ImageArrays:
    """A TFDS image-classification dataset (cifar10, cifar100, imagenette, ...) read into memory.

    Training data is the ``train`` split less a stratified ``validation_split`` hold-out; test data
    is the ``test`` split, or ``validation`` for datasets that have no test split (imagenette).

    Args:
        name: TFDS builder name, optionally with config/version (``imagenette/160px``).
        data_dir: TFDS data dir (default ``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
        image_size: ``(height, width)`` to resize to; required for datasets of varying image size.
        channels: force 1 or 3 channels; ``None`` keeps the dataset's.
        validation_split: fraction of ``train`` held out for validation.
        download: download and prepare the dataset if it is missing (needs network).
        seed: seed of the validation hold-out.

    Raises:
        DatasetUnavailableError: the dataset is not prepared in ``data_dir`` and ``download`` is off.
    """
    builder, _ = tfds_builder(name, data_dir, download)
    _, test_split = tfds_split_names(builder)
    x_all, y_all = _tfds_split(builder, "train", image_size, channels)
    train, validation = _split_validation(x_all, y_all, validation_split, seed)
    test = _tfds_split(builder, test_split, image_size, channels)
    label_feature = builder.info.features["label"]
    return ImageArrays(train, validation, test, list(label_feature.names))


def load_folder(path: str, image_size=(32, 32), channels: int = 3, validation_split: float = 0.2,
                seed: int = 0) -> ImageArrays:
    """Users' own images: ``path/<class name>/*.png|jpg|...``, one sub-folder per class.

    A stratified ``validation_split`` of the images is held out; it serves as both validation and
    test data (a folder has no separate test set).

    Args:
        path: root folder.
        image_size: ``(height, width)`` every image is resized to.
        channels: 1 or 3.
        validation_split: fraction held out.
        seed: seed of the hold-out.
    """
    import tensorflow as tf

    files, labels, class_names = list_image_folder(path)
    images = np.empty((len(files), *image_size, channels), np.uint8)
    readable = np.ones(len(files), bool)
    for i, file in enumerate(files):
        try:
            image = tf.io.decode_image(tf.io.read_file(file), channels=channels, expand_animations=False)
        except tf.errors.OpError:  # corrupt or truncated: named and skipped (docs/data.md)
            warn_unreadable(file)
            readable[i] = False
            continue
        images[i] = tf.cast(tf.round(tf.image.resize(image, image_size)), tf.uint8).numpy()
    if not readable.any():
        raise ValueError(f"image folder {path!r}: none of its {len(files)} image files could be read (each was "
                         f"skipped as unreadable or corrupt)")
    images, labels = images[readable], labels[readable]
    train, validation = _split_validation(images, labels, validation_split, seed)
    return ImageArrays(train, validation, validation, class_names)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
UNREADABLE_PREFIX = "keras-resnets: warning: skipping unreadable image"


def list_image_folder(path: str):
    """Files and labels of ``path/<class name>/*.png|jpg|...`` (sorted, one sub-folder per class).

    Returns:
        ``(files, labels, class_names)``: numpy arrays of paths and int32 labels, list of names.

    Raises:
        DatasetUnavailableError: the folder does not exist or has fewer than 2 classes of images.
    """
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise DatasetUnavailableError(f"image folder {path!r} does not exist")
    class_names = sorted(d for d in os.listdir(path) if os.path.isdir(os.path.join(path, d)))
    files, labels = [], []
    for index, class_name in enumerate(class_names):
        for file in sorted(os.listdir(os.path.join(path, class_name))):
            if file.lower().endswith(IMAGE_EXTENSIONS):
                files.append(os.path.join(path, class_name, file))
                labels.append(index)
    if len(class_names) < 2 or not files:
        raise DatasetUnavailableError(
            f"image folder {path!r} needs one sub-folder of images per class (at least 2 classes, "
            f"files ending in {', '.join(IMAGE_EXTENSIONS)}); found {len(class_names)} classes, "
            f"{len(files)} images"
        )
    return np.asarray(files), np.asarray(labels, np.int32), class_names


def warn_unreadable(file: str) -> None:
    """Name a skipped, unreadable image on stderr (the line the tf.data pipelines print)."""
    print(f"{UNREADABLE_PREFIX} {file}", file=sys.stderr, flush=True)
