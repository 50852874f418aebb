"""Shared helpers of the reproduction notebooks: the SMALL switch, seeded short trainings, tables.

``SMALL=1`` (environment) shrinks every notebook to a smoke run (fewer steps and seeds) so CI can
execute all of them in minutes; the committed outputs come from full runs (``make notebooks``).
"""
from __future__ import annotations

import os
import time

import keras
import numpy as np

from keras_resnets.experiments.report import markdown_table  # noqa: F401  (the notebooks' tables)

SMALL = os.environ.get("SMALL", "0") not in ("", "0")
DATASET = "textured_digits"
IMAGE_SIZE = (16, 16)
BATCH_SIZE = 64


def pick(full, small):
    """``small`` when the SMALL switch is on, else ``full``."""
    return small if SMALL else full


def load(seed: int = 0, batch_size: int = BATCH_SIZE, image_size=IMAGE_SIZE, augment: str = "none"):
    """The notebooks' data: ``textured_digits`` at ``image_size`` (synthetic, see its module docstring)."""
    from keras_resnets.data import load_dataset

    return load_dataset(DATASET, image_size=image_size, batch_size=batch_size, augment=augment, seed=seed)


class BatchLoss(keras.callbacks.Callback):
    """Records the training loss of every batch (the running epoch mean Keras reports is undone)."""

    def __init__(self):
        super().__init__()
        self.losses, self._sum, self._count = [], 0.0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self._sum, self._count = 0.0, 0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self._count += 1
        self.losses.append(mean * self._count - self._sum)  # Keras logs the running mean of the epoch
        self._sum = mean * self._count


def train_variant(name: str, data, *, seed: int, steps: int, lr: float = 0.05, weight_decay: float = 5e-4,
                  evaluate: bool = True, **model_kwargs) -> dict:
    """Build ``name`` (registry) with ``model_kwargs``, train ``steps`` SGD steps, evaluate on the test split.

    SGD with momentum 0.9 and cosine decay from ``lr`` (the papers' optimiser; the cosine schedule
    stands in for their step schedule over a much shorter run), L2 weight decay.

    Returns:
        dict with ``batch_loss`` (per step), ``train_loss`` (mean of the last 10 % of steps),
        ``test_accuracy``, ``params``, ``seconds`` and the ``model``.
    """
    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    keras.utils.set_random_seed(seed)
    model = create_model(name, input_shape=data.info.image_shape, classes=data.info.num_classes, **model_kwargs)
    recipe = with_overrides(get_recipe("cifar10_study"), lr=lr, schedule="cosine", weight_decay=weight_decay,
                            batch_size=data.batch_size)
    compile_model(model, recipe, total_steps=steps)
    recorder = BatchLoss()
    epochs = -(-steps // data.steps_per_epoch)
    start = time.time()
    model.fit(data.train(epochs).take(steps), epochs=1, steps_per_epoch=steps, callbacks=[recorder], verbose=0)
    seconds = time.time() - start
    tail = max(1, steps // 10)
    result = {"batch_loss": recorder.losses, "train_loss": float(np.mean(recorder.losses[-tail:])),
              "params": int(model.count_params()), "seconds": seconds, "model": model}
    if evaluate:
        result["test_accuracy"] = float(model.evaluate(data.test, verbose=0, return_dict=True)["accuracy"])
    return result


def mean_std(values, scale: float = 1.0, digits: int = 2) -> str:
    """``"mean ± std"`` of ``values`` times ``scale`` (sample std over seeds)."""
    values = np.asarray(values, dtype=float) * scale
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def show_table(header, rows) -> None:
    """Display a Markdown table in the notebook (plain text elsewhere)."""
    text = markdown_table(header, rows)
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:
        print(text)


def smooth(values, window: int = 10) -> np.ndarray:
    """Moving average (valid part) for noisy per-step curves."""
    values = np.asarray(values, dtype=float)
    window = max(1, min(window, len(values)))
    return np.convolve(values, np.ones(window) / window, mode="valid")
