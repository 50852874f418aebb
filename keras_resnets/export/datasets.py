"""Images for calibration, fine-tuning and verification, drawn from the run's data pipeline."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from keras_resnets.export.errors import ExportError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclasses.dataclass
class ExportData:
    """Normalised images (``(pixels - mean) / std``) and int labels.

    Attributes:
        train_images, train_labels: training images without augmentation, in the training
            pipeline's (seeded, shuffled) order; calibration and fine-tuning draw from them.
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
                     eval_samples: int | None = None) -> ExportData:
    """Training and held-out images for ``source``.

    Args:
        source: the :class:`~keras_resnets.export.source.ExportSource`.
        dataset: ``None`` (the run's dataset from ``config.json``), a dataset name for
            ``keras_resnets.data.load_dataset``, or an ``.npz`` file with ``x_train, y_train,
            x_test, y_test`` (raw pixels 0..255, NHWC) normalised with the source's mean/std.
        calibration_samples: size of the representative set.
        eval_samples: cap on held-out images (all by default).

    Raises:
        ExportError: no dataset is known, or its images do not match the model's input shape.
    """
    if calibration_samples < 1:
        raise ExportError(f"calibration_samples must be >= 1, got {calibration_samples}")
    dataset = dataset or source.config.get("dataset")
    if not dataset:
        raise ExportError(f"{source.model_path} has no run config naming its dataset; pass --dataset "
                          "(a dataset name or an .npz file with x_train, y_train, x_test, y_test)")
    mean = np.asarray(source.mean, np.float32)
    std = np.asarray(source.std, np.float32)
    if str(dataset).endswith(".npz"):
        x_train, y_train, x_test, y_test = _from_npz(Path(dataset), mean, std)
    else:
        x_train, y_train, x_test, y_test = _from_pipeline(source, str(dataset))
    for split, images in (("training", x_train), ("held-out", x_test)):
        if tuple(images.shape[1:]) != tuple(source.input_shape):
            raise ExportError(f"dataset {dataset!r} {split} images have shape {tuple(images.shape[1:])}, "
                              f"the model expects {tuple(source.input_shape)}")
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


def _from_pipeline(source, name: str):
    from keras_resnets.data import load_dataset

    height, width, channels = source.input_shape
    config = source.config
    try:
        datasets = load_dataset(name, data_dir=config.get("data_dir"), batch_size=256, augment="none",
                                image_size=(height, width), channels=channels, seed=int(config.get("seed", 0)))
    except (ValueError, FileNotFoundError) as err:
        raise ExportError(f"cannot load dataset {name!r}: {err}") from None
    x_train, y_train = _collect(datasets.train(1))
    x_test, y_test = _collect(datasets.test)
    return x_train, y_train, x_test, y_test


def _collect(pipeline):
    images, labels = [], []
    for x, y in pipeline:
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images).astype(np.float32), np.concatenate(labels).astype(np.int32)
