"""Segmentation metrics (Keras only, any backend)."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_resnets.labels import IGNORE_LABEL


@keras.saving.register_keras_serializable(package="keras_resnets")
class MeanIoU(keras.metrics.Metric):
    """Mean intersection-over-union of per-pixel predictions, with an ignore label.

    Accumulates a ``classes × classes`` confusion matrix (rows: true class, columns: predicted
    class) over every batch. The IoU of class ``c`` is ``TP / (TP + FP + FN)``; the mean runs over
    the classes that occur in the labels or the predictions so far (a class absent from both has
    no IoU), as in the Pascal VOC evaluation.

    Args:
        num_classes: number of classes.
        ignore_label: label value excluded from the evaluation (255, the VOC "void" label, by
            default); ``None`` counts every pixel. Labels outside ``[0, num_classes)`` other than
            this one raise nothing and are ignored too, since no class can match them.
        from_logits: ``y_pred`` holds per-class scores ``(..., num_classes)`` (the argmax is the
            prediction); ``False`` means ``y_pred`` already holds class indices.
        name, dtype: as for any Keras metric.

    ``y_true`` has shape ``(batch, H, W)`` or ``(batch, H, W, 1)``; ``sample_weight`` (same shape as
    ``y_true``) weights the pixels.
    """

    def __init__(self, num_classes: int, ignore_label: int | None = IGNORE_LABEL, from_logits: bool = True,
                 name: str = "mean_iou", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
        if ignore_label is not None and (isinstance(ignore_label, bool) or not isinstance(ignore_label, int)):
            raise ValueError(f"ignore_label must be an integer label or None, got {ignore_label!r}")
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.from_logits = from_logits
        self.confusion = self.add_variable(shape=(num_classes, num_classes), initializer="zeros",
                                           dtype="float32", name="confusion_matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.argmax(y_pred, axis=-1) if self.from_logits else y_pred
        y_pred = ops.reshape(ops.cast(y_pred, "int32"), (-1,))
        valid = ops.logical_and(y_true >= 0, y_true < self.num_classes)
        if self.ignore_label is not None:
            valid = ops.logical_and(valid, ops.not_equal(y_true, self.ignore_label))
        weight = ops.cast(valid, "float32")
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        true_one_hot = ops.one_hot(ops.where(valid, y_true, 0), self.num_classes) * weight[:, None]
        pred_one_hot = ops.one_hot(ops.clip(y_pred, 0, self.num_classes - 1), self.num_classes)
        self.confusion.assign_add(ops.matmul(ops.transpose(true_one_hot), pred_one_hot))

    def _iou_and_presence(self):
        confusion = ops.convert_to_tensor(self.confusion)
        true_positives = ops.diagonal(confusion)
        union = ops.sum(confusion, axis=0) + ops.sum(confusion, axis=1) - true_positives
        present = union > 0
        iou = ops.where(present, true_positives / ops.maximum(union, 1.0), 0.0)
        return iou, ops.cast(present, "float32")

    def result(self):
        iou, present = self._iou_and_presence()
        return ops.sum(iou * present) / ops.maximum(ops.sum(present), 1.0)

    def per_class_iou(self) -> np.ndarray:
        """IoU of each class so far, as a numpy array; ``nan`` for a class seen in neither labels nor predictions."""
        iou, present = (ops.convert_to_numpy(t) for t in self._iou_and_presence())
        return np.where(present > 0, iou, np.nan)

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label,
                "from_logits": self.from_logits}


@keras.saving.register_keras_serializable(package="keras_resnets")
class PixelAccuracy(keras.metrics.Metric):
    """Share of labelled pixels whose predicted class (argmax of ``y_pred``) is right.

    Args:
        ignore_label: label value left out (255 by default); ``None`` counts every pixel.
        name, dtype: as for any Keras metric.
    """

    def __init__(self, ignore_label: int | None = IGNORE_LABEL, name: str = "pixel_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ignore_label = ignore_label
        self.correct = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        y_pred = ops.reshape(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), (-1,))
        valid = ops.ones_like(y_true, dtype="bool")
        if self.ignore_label is not None:
            valid = ops.not_equal(y_true, self.ignore_label)
        weight = ops.cast(valid, "float32")
        if sample_weight is not None:
            weight = weight * ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
        self.correct.assign_add(ops.sum(ops.cast(ops.equal(y_true, y_pred), "float32") * weight))
        self.total.assign_add(ops.sum(weight))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "ignore_label": self.ignore_label}
