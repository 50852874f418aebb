"""Tasks: what a run learns, and therefore everything that differs between tasks.

A :class:`Task` owns its loss, its Keras metrics, the monitored metric, a numpy ``score`` (used by
training results, evaluation, export verification and fine-tuning alike), its plots, its export
check (which outputs it expects, the float32 parity bar, the metric the accuracy budget applies to)
and its default search space. Code elsewhere asks the task; it never compares a task's name.

``classification``: one label per image; sparse cross-entropy; top-1 accuracy; ``best.keras`` and
early stopping follow ``val_accuracy``; export verifies top-1.
``segmentation``: one label per pixel, :data:`IGNORE_LABEL` (255) ignored by the loss and the metrics;
mean IoU (with per-class IoU) and pixel accuracy; ``best.keras`` and early stopping follow
``val_mean_iou``; export verifies mean IoU.

Plain Python and numpy at import time: Keras loads when a loss or metric is built. Adding a task is
a subclass here, one entry in :data:`_TASKS`, its dataset entries and its model family
(docs/CONTRACTS.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keras_resnets.labels import IGNORE_LABEL


@dataclass(frozen=True)
class Task:
    """One task's training, evaluation and export behaviour.

    Attributes:
        name: the task's name in ``config.json``, the dataset registry and reports.
        metric: the main metric's name in the logs (``accuracy``, ``mean_iou``).
        extra_metrics: further metrics in the logs (``pixel_accuracy``).
        default_recipe: the recipe used when a run names none.
        default_classifier_activation: the model's output activation unless asked otherwise
            (``None``: logits, per pixel for segmentation).
        export_metric: the :meth:`score` key the export accuracy budget applies to (``top1``, ``miou``).
        export_metric_label: how reports write it (``top-1``, ``mIoU``).
        agreement_metric: the :meth:`score` key reported for a fine-tuned Keras model.
        default_space: the search space ``tune`` uses when none is named
            (``keras_resnets.tuning.space.SPACES``).
        fixed_space: ``key -> the only values this task's data allows`` in a search space.
        float32_parity_bar: the largest max-abs difference between a float32 artifact's
            probabilities and the Keras model's that a correct conversion shows: 1e-4 for one
            probability vector per image; 1e-3 for per-pixel maps, where the max runs over every
            pixel of every image and each value sums a large dilated receptive field (a freshly
            trained ``dilated_resnet18_seg`` on 64 x 64 shapes converts correctly at 2.8e-4).
        per_pixel: labels are masks ``(n, height, width)``, outputs ``(n, height, width, classes)``.
        ignore_label: the label the loss and metrics leave out (``None``: every label counts).
        evaluation_protocols: ``keras-resnets evaluate``'s image protocols apply to its runs.
        keras_qat: export's Keras 3 QAT path fine-tunes this task's models.
    """

    name: str
    metric: str
    extra_metrics: tuple
    default_recipe: str
    default_classifier_activation: str | None
    export_metric: str
    export_metric_label: str
    agreement_metric: str
    default_space: str
    fixed_space: tuple = ()
    float32_parity_bar: float = 1e-4
    per_pixel: bool = False
    ignore_label: int | None = None
    evaluation_protocols: bool = False
    keras_qat: bool = False

    @property
    def monitor(self) -> str:
        """The validation metric that picks ``best.keras`` and drives early stopping (maximised)."""
        return f"val_{self.metric}"

    @property
    def objectives(self) -> tuple:
        """Metrics ``tune`` can optimise."""
        return (self.monitor, "val_loss", *(f"val_{m}" for m in self.extra_metrics), self.metric, "loss")

    @property
    def plots(self) -> tuple:
        """Metrics drawn in ``curves.png`` next to the loss."""
        return (self.metric,)

    def write_predictions(self, model, test, info, path: str, class_names=()) -> bool:
        """Draw the model's predictions on a few held-out images to ``path`` (``predictions.png``);
        ``False`` when the task draws none."""
        return False

    def check_labels(self, labels, num_classes: int, input_shape) -> str | None:
        """What is wrong with a labelled set ``labels`` for a model of this task (``None``: nothing)."""
        return None

    def loss(self, from_logits: bool):
        """The Keras loss (the ignore label, if any, left out)."""
        import keras

        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=self.ignore_label)

    def metrics(self, num_classes: int) -> list:
        """Fresh Keras metrics, named as :attr:`metric` and :attr:`extra_metrics`."""
        raise NotImplementedError

    def fits_model_family(self, family: str) -> bool:
        """Whether models of the registry family ``family`` produce this task's outputs."""
        raise NotImplementedError

    def output_shape_fits(self, output_shape, input_shape) -> bool:
        """Whether a model output ``(batch, ...)`` is this task's, for an input ``(H, W, C)``."""
        raise NotImplementedError

    def score(self, outputs, labels) -> dict:
        """Numpy metrics (percent) of ``outputs`` (scores per class, last axis) against ``labels``.

        Always holds :attr:`export_metric` and :attr:`agreement_metric`.
        """
        raise NotImplementedError

    def test_extras(self, model, test, class_names) -> dict:
        """Further ``metrics.json`` entries a finished run reports (beyond Keras' ``evaluate``)."""
        return {}

    def label_counts(self, labels, classes: int) -> np.ndarray:
        """How often each class occurs in ``labels`` (per image or per pixel; the ignore label left out)."""
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        labels = labels[(labels >= 0) & (labels < classes)]
        return np.bincount(labels, minlength=classes)

    def constant_baseline(self, counts) -> float:
        """The main metric, as Keras logs it (a fraction), of a model that predicts the most frequent
        class of ``counts`` for every image (pixel): what a model that has learned nothing scores."""
        counts = np.asarray(counts, dtype=np.float64)
        return float(counts.max() / counts.sum()) if counts.sum() else 0.0

    def sidecar_output(self, output_shape) -> dict:
        """What the edge sidecar says about an artifact's output besides dtype and quantization."""
        return {}


    def check_space(self, values: dict) -> None:
        """Refuse search-space values this task's data cannot take (``ValueError``, one line)."""
        for key, allowed in self.fixed_space:
            extra = [v for v in values.get(key, ()) if v not in allowed]
            if extra:
                raise ValueError(f"{self.name} data allows {key} {list(allowed)} only; the space's {key} values "
                                 f"{list(values[key])} include {extra[0]!r} (--space-arg {key}={','.join(allowed)})")


@dataclass(frozen=True)
class ClassificationTask(Task):
    """One label per image; top-1 accuracy."""

    def metrics(self, num_classes: int) -> list:
        import keras

        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]

    def fits_model_family(self, family: str) -> bool:
        return family != SEGMENTATION_FAMILY

    def output_shape_fits(self, output_shape, input_shape) -> bool:
        dims = tuple(output_shape[1:])
        return len(dims) == 1 and dims[0] is not None

    def score(self, outputs, labels) -> dict:
        predicted = np.argmax(np.asarray(outputs), -1)
        return {"top1": 100.0 * float(np.mean(predicted == np.asarray(labels)))}


@dataclass(frozen=True)
class SegmentationTask(Task):
    """One label per pixel; mean IoU over the classes present, pixel accuracy; label 255 ignored."""

    def write_predictions(self, model, test, info, path: str, class_names=(), count: int = 4) -> bool:
        """Held-out images, true and predicted masks, one row each (``count`` rows)."""
        from keras_resnets.training.artifacts import plot_predictions

        images, masks = [], []
        for x, y in test:
            images.append(np.asarray(x))
            masks.append(np.asarray(y))
            if sum(len(i) for i in images) >= count:
                break
        images, masks = np.concatenate(images)[:count], np.concatenate(masks)[:count]
        plot_predictions(model, images, masks, info.mean, info.std, path, class_names, self.ignore_label)
        return True

    def check_labels(self, labels, num_classes: int, input_shape) -> str | None:
        """Masks ``(n, height, width)`` of class indices or the ignore label."""
        height, width = input_shape[:2]
        if labels.ndim != 3 or tuple(labels.shape[1:]) != (height, width):
            return (f"masks have shape {tuple(labels.shape)}; a segmentation model with input {tuple(input_shape)} "
                    f"needs masks (n, {height}, {width})")
        values = np.unique(labels)
        bad = values[((values < 0) | (values >= num_classes)) & (values != self.ignore_label)]
        if bad.size:
            return (f"masks hold labels {bad[:5].tolist()}; allowed are 0..{num_classes - 1} and the ignore label "
                    f"{self.ignore_label}")
        return None

    def metrics(self, num_classes: int) -> list:
        from keras_resnets.metrics import MeanIoU, PixelAccuracy

        return [MeanIoU(num_classes, ignore_label=self.ignore_label, name="mean_iou"),
                PixelAccuracy(ignore_label=self.ignore_label, name="pixel_accuracy")]

    def fits_model_family(self, family: str) -> bool:
        return family == SEGMENTATION_FAMILY

    def output_shape_fits(self, output_shape, input_shape) -> bool:
        dims = tuple(output_shape[1:])
        return len(dims) == 3 and None not in dims and dims[:2] == tuple(input_shape[:2])

    def score(self, outputs, labels) -> dict:
        """``miou``, ``pixel_accuracy``, ``class_iou`` (``None`` for a class absent from labels and
        predictions, as :class:`keras_resnets.metrics.MeanIoU`), ``pixels`` and ``ignore_label``."""
        outputs = np.asarray(outputs)
        confusion = self.confusion(labels, np.argmax(outputs, -1), outputs.shape[-1])
        true_positives = np.diag(confusion).astype(np.float64)
        union = confusion.sum(0) + confusion.sum(1) - true_positives
        class_iou = [100.0 * float(tp / u) if u > 0 else None for tp, u in zip(true_positives, union)]
        present = [v for v in class_iou if v is not None]
        total = confusion.sum()
        return {"miou": float(np.mean(present)) if present else 0.0,
                "pixel_accuracy": 100.0 * float(np.trace(confusion) / total) if total else 0.0,
                "class_iou": class_iou, "pixels": int(total), "ignore_label": self.ignore_label}

    def constant_baseline(self, counts) -> float:
        """Mean IoU of one class predicted for every pixel: that class's IoU is its share of the
        pixels, every other class present scores 0, and the mean runs over the classes present."""
        counts = np.asarray(counts, dtype=np.float64)
        present = int((counts > 0).sum())
        return float(counts.max() / counts.sum() / present) if present else 0.0

    def confusion(self, labels, predicted, classes: int) -> np.ndarray:
        """``classes x classes`` pixel counts (rows: true class, columns: predicted), ignore label left out."""
        labels = np.asarray(labels).reshape(-1).astype(np.int64)
        predicted = np.asarray(predicted).reshape(-1).astype(np.int64)
        valid = (labels >= 0) & (labels < classes) & (labels != self.ignore_label)
        counts = np.bincount(labels[valid] * classes + predicted[valid], minlength=classes * classes)
        return counts.reshape(classes, classes)

    def test_extras(self, model, test, class_names) -> dict:
        """``test_per_class_iou``: class name -> IoU (``None`` for a class seen in neither labels nor
        predictions), accumulated over the whole test split."""
        from keras_resnets.metrics import MeanIoU

        iou = MeanIoU(int(model.output_shape[-1]), ignore_label=self.ignore_label)
        for images, masks in test:
            iou.update_state(masks, model(images, training=False))
        names = list(class_names) or [str(i) for i in range(iou.num_classes)]
        return {"test_per_class_iou": {name: None if np.isnan(v) else round(float(v), 4)
                                       for name, v in zip(names, iou.per_class_iou())}}

    def sidecar_output(self, output_shape) -> dict:
        height, width, classes = (int(d) for d in output_shape[1:])
        return {"layout": "NHWC", "height": height, "width": width, "classes": classes}



SEGMENTATION_FAMILY = "segmentation"  # the model registry's family of per-pixel models

_TASKS = {task.name: task for task in (
    ClassificationTask(
        "classification", "accuracy", (), "cifar10_study", "softmax", "top1", "top-1", "top1", "study",
        evaluation_protocols=True, keras_qat=True),
    SegmentationTask(
        "segmentation", "mean_iou", ("pixel_accuracy",), "shapes_segmentation", None, "miou", "mIoU",
        "pixel_accuracy", "segmentation_lr", fixed_space=(("augment", ("none",)),), float32_parity_bar=1e-3,
        per_pixel=True, ignore_label=IGNORE_LABEL),
)}
TASKS = tuple(_TASKS)
CLASSIFICATION, SEGMENTATION = TASKS  # the names the dataset registry declares its entries' tasks with


def get_task(name) -> Task:
    """The task called ``name`` (a :class:`Task` is returned as it is).

    Raises:
        ValueError: unknown name, naming the allowed ones.
    """
    if isinstance(name, Task):
        return name
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return _TASKS[name]


def task_for_output(output_shape, input_shape) -> Task | None:
    """The task whose outputs have this shape (for a bare ``.keras`` file without a run), or ``None``."""
    return next((task for task in _TASKS.values() if task.output_shape_fits(output_shape, input_shape)), None)


def all_objectives() -> tuple:
    """Every objective ``tune`` accepts, over all tasks."""
    return tuple(dict.fromkeys(o for task in _TASKS.values() for o in task.objectives))


def export_metric_labels() -> dict:
    """``export_metric -> label`` over all tasks (``top1 -> top-1``)."""
    return {task.export_metric: task.export_metric_label for task in _TASKS.values()}
