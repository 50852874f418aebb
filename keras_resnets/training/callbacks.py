"""Callbacks that make a run safe to kill and honest about divergence.

``NonFiniteLossGuard`` stops training at the first NaN/inf loss (and warns once, early, when the loss
explodes); the checkpointing callbacks below consult it so that the checkpoints on disk always hold
the last *good* weights.

Every file is serialised in memory and then written by ``keras_resnets.files.atomic_write``: a full
disk is a plain ``OSError`` of one ``write``, never a half-written HDF5 file that h5py fails to
close. At the end of an epoch the callbacks write, in this order, ``history.csv``, the checkpoints
and last the resume state (the commit point): a failure at any step leaves a run that resumes from
the last committed epoch and whose history holds every finished epoch exactly once.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import sys

import keras

from keras_resnets.files import atomic_write, write_json

# A batch loss this many times its first value (at least 1) counts as exploding: warn once.
EXPLOSION_FACTOR = 100.0


def model_bytes(model: keras.Model) -> bytes:
    """``model`` as the bytes of a ``.keras`` file (serialised in memory)."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    saving_lib.save_model(model, buffer)
    return buffer.getvalue()


def weights_bytes(model: keras.Model) -> bytes:
    """``model``'s weights (optimizer state included) as the bytes of a ``.weights.h5`` file."""
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    store = saving_lib.H5IOStore(buffer, mode="w")
    saving_lib._save_state(model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set())
    store.close()
    return buffer.getvalue()


def write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (``RunWriteError`` when it cannot be written)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)


def save_model_file(model: keras.Model, path: str) -> None:
    """Save ``model`` as the ``.keras`` file ``path``, atomically."""
    write_bytes(path, model_bytes(model))


def save_weights_file(model: keras.Model, path: str) -> None:
    """Save ``model``'s weights as the ``.weights.h5`` file ``path``, atomically."""
    write_bytes(path, weights_bytes(model))


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop training at the first non-finite batch loss and remember where it happened.

    Args:
        warn_explosion: print one warning line the first time the batch loss exceeds
            ``EXPLOSION_FACTOR`` times its first value (at least 1): an exploding loss, long before NaN.
    """

    def __init__(self, warn_explosion: bool = False):
        super().__init__()
        self.diverged_at = None  # (epoch, batch, loss) once the loss is NaN/inf
        self.exploded_at = None  # (epoch, batch, loss) of the warning
        self.warn_explosion = warn_explosion
        self._first_loss = None
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(loss)
        if not math.isfinite(loss):
            if self.diverged_at is None:
                self.diverged_at = (self._epoch, batch, loss)
                self.model.stop_training = True
            return
        if self._first_loss is None:
            self._first_loss = max(abs(loss), 1.0)
        elif self.warn_explosion and self.exploded_at is None and loss > EXPLOSION_FACTOR * self._first_loss:
            self.exploded_at = (self._epoch, batch, loss)
            print(f"\nkeras-resnets: warning: the training loss exploded to {loss:.3g} at epoch {self._epoch + 1}, "
                  f"batch {batch + 1} (first batch: {self._first_loss:.3g}); the run is diverging: try a lower lr "
                  f"(--lr), warmup_steps (--warmup-steps) or another recipe", file=sys.stderr, flush=True)


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

    def _save_model(self):
        """Keras' two copies, each file written atomically from memory; the metadata, written last, is
        the commit and records the digest of its weights."""
        import shutil

        os.makedirs(self.backup_dir, exist_ok=True)
        for path, previous in ((self._weights_path, self._prev_weights_path),
                               (self._training_metadata_path, self._prev_training_metadata_path)):
            if os.path.exists(path):
                atomic_write(previous, lambda tmp, path=path: shutil.copyfile(path, tmp))
        weights = weights_bytes(self.model)
        write_bytes(self._weights_path, weights)
        write_json(self._training_metadata_path, {"epoch": self._current_epoch, "batch": self._last_batch_seen,
                                                  "sha256": hashlib.sha256(weights).hexdigest()})

    def _load_model(self):
        """Resume from weights that match the committed metadata: a process stopped after writing new
        weights but before their metadata left the previous weights in the ``.bkp`` copy."""
        import shutil

        try:
            with open(self._training_metadata_path) as f:
                digest = json.load(f).get("sha256")
        except (OSError, ValueError):
            digest = None
        if digest and _sha256(self._weights_path) != digest and _sha256(self._prev_weights_path) == digest:
            atomic_write(self._weights_path, lambda tmp: shutil.copyfile(self._prev_weights_path, tmp))
        super()._load_model()


def _sha256(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError:
        return None


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
        # serialised in memory, then temp file + rename: a failed write (disk full) leaves the previous
        # checkpoint intact
        save_weights_file(self.model, self.last_weights)
        value = (logs or {}).get(self.monitor)
        if value is not None and float(value) > self.best:
            save_model_file(self.model, self.best_path)
            self.best = float(value)


class HistoryWriter(keras.callbacks.Callback):
    """``history.csv``: one row per finished epoch, rewritten atomically at each epoch's end.

    The first epoch of a ``fit`` drops the rows of that epoch and later ones (written by an
    interrupted session after its last committed epoch), so every epoch appears exactly once.
    The columns are those of Keras' ``CSVLogger``: ``epoch``, then the logs' keys sorted.

    Args:
        path: the CSV file.
        keep_existing: keep the rows already in the file (a resumed run); ``False`` starts afresh.
    """

    def __init__(self, path: str, keep_existing: bool = False):
        super().__init__()
        self.path = path
        self.keep_existing = keep_existing
        self.rows = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.rows is None:
            rows = read_history_rows(self.path) if self.keep_existing else []
            self.rows = [row for row in rows if _epoch_of(row) is not None and _epoch_of(row) < epoch]

    def on_epoch_end(self, epoch, logs=None):
        self.rows.append({"epoch": epoch, **{k: _csv_value(v) for k, v in (logs or {}).items()}})
        columns = ["epoch"] + sorted({k for row in self.rows for k in row} - {"epoch"})

        def write(tmp):
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns, restval="")
                writer.writeheader()
                writer.writerows(self.rows)

        atomic_write(self.path, write)


def read_history_rows(path: str) -> list:
    """The rows of ``history.csv`` as dicts of strings (empty list if missing)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _epoch_of(row: dict):
    try:
        return int(float(row.get("epoch")))
    except (TypeError, ValueError):
        return None


def _csv_value(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


class LearningRateLogger(keras.callbacks.Callback):
    """Add the learning rate at the end of each epoch to the logs (``lr`` column of history.csv)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            optimizer = self.model.optimizer
            logs["lr"] = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
