"""Callbacks that make a run safe to kill and honest about divergence.

``NonFiniteLossGuard`` stops training at the first NaN/inf loss; the checkpointing callbacks below
consult it so that the checkpoints on disk always hold the last *good* weights.
"""
from __future__ import annotations

import json
import math
import os

import keras

from keras_resnets.runs import atomic_write


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite batch loss and remember where it happened."""

    def __init__(self):
        super().__init__()
        self.diverged_at = None  # (epoch, batch, loss) once the loss is NaN/inf
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)) and self.diverged_at is None:
            self.diverged_at = (self._epoch, batch, float(loss))
            self.model.stop_training = True


class GuardedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` that never backs up the weights of a diverged epoch.

    Args:
        backup_dir: where the resumable training state lives.
        guard: the run's ``NonFiniteLossGuard``.
    """

    def __init__(self, backup_dir: str, guard: NonFiniteLossGuard):
        # Two copies: a kill while the backup is written leaves the previous one to resume from.
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False, double_checkpoint=True)
        self.guard = guard

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.diverged_at is None:
            super().on_epoch_end(epoch, logs)


def backed_up_epoch(backup_dir: str) -> int:
    """Epochs completed according to a ``BackupAndRestore`` directory (0 if there is none)."""
    path = os.path.join(backup_dir, "training_metadata.json")
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        return int(json.load(f)["epoch"])


class EpochCheckpoint(keras.callbacks.Callback):
    """Each epoch: save the weights to ``last_weights`` and the best model (by ``monitor``) to ``best_path``.

    Nothing is written for an epoch whose loss went non-finite. Both files are replaced atomically.

    Args:
        last_weights: ``.weights.h5`` path overwritten every epoch.
        best_path: ``.keras`` path of the best model so far.
        guard: the run's ``NonFiniteLossGuard``.
        monitor: metric to maximise (the task's: ``val_accuracy``, ``val_mean_iou``).
        best: best value seen before this ``fit`` (a resumed run passes its previous best).
    """

    def __init__(self, last_weights: str, best_path: str, guard: NonFiniteLossGuard,
                 monitor: str = "val_accuracy", best: float = -math.inf):
        super().__init__()
        self.last_weights = last_weights
        self.best_path = best_path
        self.guard = guard
        self.monitor = monitor
        self.best = best

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.diverged_at is not None:
            return
        # temp file + rename: a failed write (disk full) leaves the previous checkpoint intact
        atomic_write(self.last_weights, self.model.save_weights)
        value = (logs or {}).get(self.monitor)
        if value is not None and float(value) > self.best:
            atomic_write(self.best_path, self.model.save)
            self.best = float(value)


class LearningRateLogger(keras.callbacks.Callback):
    """Add the learning rate at the end of each epoch to the logs (``lr`` column of history.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = self.model.optimizer
            logs["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
