"""Images for calibration, fine-tuning and verification, drawn from the run's data pipeline."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_resnets.export.errors import ExportError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
# Per-pixel outputs are large: without ``eval_samples``, segmentation verification uses at most this many.
SEGMENTATION_EVAL_SAMPLES = 500


@dataclasses.dataclass
class ExportData:
    """Normalised images (``(pixels - mean) / std``) and int labels.

    Labels are class indices ``(n,)`` for classifiers and masks ``(n, height, width)`` for
    segmentation models (class indices, 255 = ignored pixel).

    Attributes:
        train_images, train_labels: training images without augmentation, in the training
            pipeline's (seeded, shuffled) order; calibration and fine-tuning draw from them (for
            segmentation only the calibration images are kept).
        eval_images, eval_labels: held-out test images for the accuracy comparison.
        calibration: the representative set: the first ``calibration_samples`` training images.
        mean, std: the normalisation, to go back to raw pixels for artifacts that normalise
            themselves.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    calibration: np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def model_inputs(self, images: np.ndarray, preprocessing: bool) -> np.ndarray:
        """``images`` in an artifact's input space: raw pixels when it normalises itself."""
        return images * self.std + self.mean if preprocessing else images


def load_export_data(source, dataset=None, *, calibration_samples: int = 200,
                     eval_samples: int | None = None, train_samples: int | None = None) -> ExportData:
    """Training and held-out images for ``source``.

    Args:
        source: the :class:`~keras_resnets.export.source.ExportSource`.
        dataset: ``None`` (the run's dataset from ``config.json``), a dataset name, or an ``.npz``
            file with ``x_train, y_train, x_test, y_test`` (raw pixels 0..255, NHWC) normalised with
            the source's mean/std. A name goes through the dataset registry
            (``keras_resnets.data.registry``) with the run's ``dataset_kwargs``, ``data_dir``, seed
            and validation split, so the training images come in the training order and the
            held-out images are the test split ``metrics.json`` reports; its task must be the
            model's. Classifiers take labels ``(n,)``, segmentation models masks ``(n, height,
            width)`` with 255 for ignored pixels.
        calibration_samples: size of the representative set.
        eval_samples: cap on held-out images (all by default; at most
            :data:`SEGMENTATION_EVAL_SAMPLES` for segmentation).
        train_samples: training images kept for fine-tuning (QAT, pruning). Classifiers keep the
            whole training split; segmentation keeps only the calibration images unless this asks
            for more (its masks are large).

    Raises:
        ExportError: no dataset is known, or its images or labels do not match the model.
    """
    if calibration_samples < 1:
        raise ExportError(f"calibration_samples must be >= 1, got {calibration_samples}")
    dataset = dataset or (source.config.dataset if source.config is not None else None)
    if not dataset:
        raise ExportError(f"{source.model_path} has no run config naming its dataset; pass --dataset "
                          "(a dataset name or an .npz file with x_train, y_train, x_test, y_test)")
    if eval_samples is not None and eval_samples < 1:
        raise ExportError(f"eval_samples must be >= 1, got {eval_samples}")
    segmentation = source.task.per_pixel
    train_limit = max(calibration_samples, train_samples or 0)
    if segmentation and eval_samples is None:
        eval_samples = SEGMENTATION_EVAL_SAMPLES
    mean = np.asarray(source.mean, np.float32)
    std = np.asarray(source.std, np.float32)
    if str(dataset).endswith(".npz"):
        x_train, y_train, x_test, y_test = _from_npz(Path(dataset), mean, std)
    else:  # per-pixel masks are large: read only what calibration, fine-tuning and verification use
        x_train, y_train, x_test, y_test = _from_registry(source, str(dataset), train_limit if segmentation else None,
                                                          eval_samples if segmentation else None)
    for split, images, labels in (("training", x_train, y_train), ("held-out", x_test, y_test)):
        if tuple(images.shape[1:]) != tuple(source.input_shape):
            raise ExportError(f"dataset {dataset!r} {split} images have shape {tuple(images.shape[1:])}, "
                              f"the model expects {tuple(source.input_shape)}")
        if len(labels) != len(images):
            raise ExportError(f"dataset {dataset!r} has {len(images)} {split} images but {len(labels)} labels")
        problem = source.task.check_labels(labels, source.num_classes, source.input_shape)
        if problem:
            raise ExportError(f"dataset {dataset!r} {split} {problem}")
    if segmentation:  # calibration, and fine-tuning when asked for, use training images
        x_train, y_train = x_train[:train_limit], y_train[:train_limit]
    if eval_samples is not None:
        x_test, y_test = x_test[:eval_samples], y_test[:eval_samples]
    return ExportData(train_images=x_train, train_labels=y_train, eval_images=x_test, eval_labels=y_test,
                      calibration=x_train[:calibration_samples], mean=mean, std=std)


def _from_npz(path: Path, mean, std):
    if not path.is_file():
        raise ExportError(f"dataset file {path} does not exist")
    try:
        arrays = np.load(path)
    except (OSError, ValueError) as err:
        raise ExportError(f"cannot read dataset file {path}: {err}") from None
    missing = [key for key in NPZ_KEYS if key not in arrays.files]
    if missing:
        raise ExportError(f"dataset file {path} lacks {missing}; it needs {list(NPZ_KEYS)}")
    x_train, x_test = (((arrays[k].astype(np.float32) - mean) / std) for k in ("x_train", "x_test"))
    return x_train, arrays["y_train"].astype(np.int32), x_test, arrays["y_test"].astype(np.int32)


def _from_registry(source, name: str, train_limit: int | None, eval_limit: int | None):
    """Training images in the training pipeline's order and the test split (the one ``metrics.json``
    reports), through the dataset registry with the run's options, renormalised to the run's statistics."""
    from keras_resnets.data import registry

    entry = registry.get_dataset(name)
    if entry.task != source.task.name:
        raise ExportError(f"dataset {name!r} is a {entry.task} dataset but the model's task is {source.task.name}; "
                          f"{source.task.name} datasets: {', '.join(registry.list_datasets(source.task.name))} "
                          "or an .npz file with x_train, y_train, x_test, y_test")
    height, width, channels = source.input_shape
    config = source.config  # None for a bare .keras file: the loader's defaults
    try:
        datasets = registry.load(name, config.dataset_kwargs if config else None,
                                 data_dir=config.data_dir if config else None, batch_size=64, augment="none",
                                 image_size=(height, width), channels=channels,
                                 validation_split=config.validation_split if config else 0.1, seed=source.seed)
    except (ValueError, FileNotFoundError) as err:  # DatasetUnavailableError names the command to prepare it
        raise ExportError(f"cannot load dataset {name!r}: {err}") from None
    own_mean, own_std = np.asarray(datasets.info.mean, np.float32), np.asarray(datasets.info.std, np.float32)
    mean, std = np.asarray(source.mean, np.float32), np.asarray(source.std, np.float32)
    splits = []
    for pipeline, limit in ((datasets.train(1), train_limit), (datasets.test, eval_limit)):
        images, labels = _collect(pipeline, limit)
        # the pipeline normalises with its own statistics; the model was trained with the run's
        if not (np.allclose(own_mean, mean) and np.allclose(own_std, std)):
            images = (images * own_std + own_mean - mean) / std
        splits += [images, labels]
    return tuple(splits)


def _collect(pipeline, limit: int | None = None):
    images, labels, count = [], [], 0
    for x, y in pipeline:
        images.append(x.numpy())
        labels.append(y.numpy())
        count += len(images[-1])
        if limit is not None and count >= limit:
            break
    images, labels = np.concatenate(images).astype(np.float32), np.concatenate(labels).astype(np.int32)
    return (images, labels) if limit is None else (images[:limit], labels[:limit])
