"""Artifacts a run draws from its history and model: ``history.csv`` columns, ``curves.png``,
``predictions.png`` (segmentation: predicted masks next to ground truth).

The run directory's layout and ``config.json`` belong to ``keras_resnets.runs``.
"""
from __future__ import annotations

import csv
import os

import numpy as np

from keras_resnets.files import atomic_write


def read_history(path: str) -> dict:
    """Columns of a CSVLogger file as lists of floats (empty dict if missing)."""
    if not os.path.exists(path):
        return {}
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = {}
    for row in rows:
        for key, value in row.items():
            try:
                columns.setdefault(key, []).append(float(value))
            except (TypeError, ValueError):
                continue
    return columns


def plot_curves(history_csv: str, out_png: str, metric: str = "accuracy") -> bool:
    """Plot loss, ``metric`` (accuracy, mean_iou) and learning rate per epoch from ``history.csv`` into ``out_png``.

    Returns:
        Whether a figure was written (``False`` when the history is empty).
    """
    history = read_history(history_csv)
    if not history.get("epoch"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [e + 1 for e in history["epoch"]]
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, column in ((axes[0], "loss"), (axes[1], metric)):
        drawn = []
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + column in history:
                ax.plot(epochs, history[prefix + column], marker=".", label=label)
                drawn += history[prefix + column]
        log = spans_orders_of_magnitude(drawn)
        if log:
            ax.set_yscale("log")
        ax.set_title(column.replace("_", " ") + (" (log scale)" if log else ""))
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    if "lr" in history:
        axes[2].plot(epochs, history["lr"], marker=".")
        if min(history["lr"]) > 0:  # a schedule decayed to 0 cannot be drawn on a log scale
            axes[2].set_yscale("log")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    _save_figure(fig, out_png)
    return True


def spans_orders_of_magnitude(values, ratio: float = 100.0) -> bool:
    """Whether positive ``values`` differ by more than ``ratio`` (then a log axis shows them all)."""
    finite = [v for v in values if np.isfinite(v)]
    return bool(finite) and min(finite) > 0 and max(finite) / min(finite) > ratio


def _save_figure(fig, out_png: str) -> None:
    import matplotlib.pyplot as plt

    try:
        atomic_write(out_png, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


# Colours of the classes in predictions.png (the ignore label is white).
_PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                     [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212]], np.uint8)


def _colour(mask: np.ndarray, ignore_label=None) -> np.ndarray:
    palette = np.concatenate([_PALETTE, np.random.default_rng(0).integers(0, 255, (256, 3), dtype=np.uint8)])
    if ignore_label is not None:
        palette[ignore_label % 256] = 255
    return palette[np.asarray(mask, np.int64) % 256]


def plot_predictions(model, images: np.ndarray, masks: np.ndarray, mean, std, out_png: str,
                     class_names=(), ignore_label=None) -> None:
    """Held-out images, their ground-truth masks and the model's predicted masks, one row each.

    Args:
        model: a per-pixel model (``(n, H, W, classes)`` scores).
        images: normalised images ``(n, H, W, C)``.
        masks: ground truth ``(n, H, W)`` (``ignore_label``: no class, drawn white).
        mean, std: the normalisation, to draw raw pixels.
        out_png: the PNG to write.
        class_names: legend of the colours.
        ignore_label: the mask value of pixels without a class (the task's), or ``None``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    predicted = np.argmax(np.asarray(model.predict(images, verbose=0)), axis=-1)
    pixels = np.clip(images * np.asarray(std) + np.asarray(mean), 0, 255).astype(np.uint8)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    fig, axes = plt.subplots(len(images), 3, figsize=(7.5, 2.5 * len(images)), squeeze=False)
    for row, panels in enumerate(zip(pixels, _colour(masks, ignore_label), _colour(predicted))):
        for ax, panel, title in zip(axes[row], panels, ("image", "ground truth", "prediction")):
            ax.imshow(panel, interpolation="nearest")
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    from matplotlib.patches import Patch

    classes = int(np.asarray(model.output_shape)[-1]) if model.output_shape[-1] else len(class_names)
    names = list(class_names) or [f"class {i}" for i in range(classes)]
    colours = _colour(np.arange(len(names)))
    handles = [Patch(facecolor=colours[i] / 255, edgecolor="grey", label=name) for i, name in enumerate(names)]
    if ignore_label is not None and np.any(np.asarray(masks) == ignore_label):
        handles.append(Patch(facecolor="white", edgecolor="grey", label=f"ignored ({ignore_label})"))
    fig.tight_layout(rect=(0, 0.06 * 4 / max(len(images), 4), 1, 1))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), fontsize=9, frameon=False,
               handlelength=1.2, handleheight=1.2, title="mask colours", title_fontsize=9)
    _save_figure(fig, out_png)
