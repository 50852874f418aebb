"""Tasks: what a run learns, and therefore its loss, metrics, monitored metric, plots and export check.

``classification``: one label per image; sparse cross-entropy; top-1 accuracy; ``best.keras`` and
early stopping follow ``val_accuracy``; export verifies top-1.
``segmentation``: one label per pixel, :data:`IGNORE_LABEL` (255) ignored by the loss and the metrics;
mean IoU (with per-class IoU) and pixel accuracy; ``best.keras`` and early stopping follow
``val_mean_iou``; export verifies mean IoU. Plain Python at import time: Keras loads when a loss or
metric is built.
"""
from __future__ import annotations

from dataclasses import dataclass

from keras_resnets.runs import TASKS

IGNORE_LABEL = 255


@dataclass(frozen=True)
class Task:
    """One task's training and evaluation choices.

    Attributes:
        name: ``classification`` or ``segmentation``.
        metric: the main metric's name in the logs (``accuracy``, ``mean_iou``).
        extra_metrics: further metrics in the logs (``pixel_accuracy``).
        default_recipe: the recipe used when a run names none.
        default_classifier_activation: the model's output activation unless asked otherwise
            (``None``: logits, per pixel for segmentation).
        export_metric: what export compares between Keras and TFLite (``top1``, ``miou``).
    """

    name: str
    metric: str
    extra_metrics: tuple
    default_recipe: str
    default_classifier_activation: str | None
    export_metric: str

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

    def loss(self, from_logits: bool):
        """The Keras loss (per pixel for segmentation, the ignore label left out)."""
        import keras

        if self.name == "segmentation":
            return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits, ignore_class=IGNORE_LABEL)
        return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)

    def metrics(self, num_classes: int) -> list:
        """Fresh Keras metrics, named as :attr:`metric` and :attr:`extra_metrics`."""
        import keras

        if self.name == "segmentation":
            from keras_resnets.metrics import MeanIoU, PixelAccuracy

            return [MeanIoU(num_classes, ignore_label=IGNORE_LABEL, name="mean_iou"),
                    PixelAccuracy(ignore_label=IGNORE_LABEL, name="pixel_accuracy")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


_TASKS = {
    "classification": Task("classification", "accuracy", (), "cifar10_study", "softmax", "top1"),
    "segmentation": Task("segmentation", "mean_iou", ("pixel_accuracy",), "shapes_segmentation", None, "miou"),
}
assert tuple(_TASKS) == TASKS


def get_task(name: str) -> Task:
    """The task called ``name``.

    Raises:
        ValueError: unknown name, naming the allowed ones.
    """
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; allowed: {', '.join(TASKS)}")
    return _TASKS[name]


def all_objectives() -> tuple:
    """Every objective ``tune`` accepts, over all tasks."""
    return tuple(dict.fromkeys(o for task in _TASKS.values() for o in task.objectives))
