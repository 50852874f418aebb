"""The pipeline contract: what every dataset the registry loads offers its consumers.

``train``, ``tune``, ``evaluate``, export and the notebooks read datasets only through this
interface, whatever the task and wherever the images live (in memory with tf.data, streamed from
files, numpy batches without TensorFlow, segmentation masks). Implemented by
``keras_resnets.data.datasets.Datasets`` (and its streaming subclass), ``keras_resnets.data.arrays.ArrayDatasets``
and ``keras_resnets.data.registry.SegmentationDatasets``. Plain Python: no TensorFlow at import.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class DatasetPipelines(Protocol):
    """Training, validation and test pipelines of one dataset.

    Attributes:
        info: ``keras_resnets.data.datasets.DatasetInfo`` (classes, image shape, normalisation, sizes).
        batch_size: batch size of every pipeline.
        augment: on-the-fly augmentation policy of the training pipeline.
        seed: seed of the training order and augmentation.
        validation, test: batches of ``(images, labels)``: float32 images normalised as
            ``(pixels - mean) / std``, int32 labels (masks ``(n, height, width)`` per pixel).
    """

    info: object
    batch_size: int
    augment: str
    seed: int
    validation: object
    test: object

    @property
    def steps_per_epoch(self) -> int:
        """Training batches per epoch."""

    def train(self, epochs: int, initial_epoch: int = 0):
        """Training batches of epochs ``initial_epoch .. epochs - 1``, back to back; epoch ``e``'s
        batches are a pure function of ``(seed, e)``, so a resumed run sees what an uninterrupted one does."""
