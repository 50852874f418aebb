"""The run directory shared by train, tune and export (layout in docs/CONTRACTS.md)."""
from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RunPaths:
    """Every file and folder of one run directory."""

    run_dir: str

    def _join(self, *parts) -> str:
        return os.path.join(self.run_dir, *parts)

    @property
    def config(self) -> str:
        return self._join("config.json")

    @property
    def checkpoints(self) -> str:
        return self._join("checkpoints")

    @property
    def backup(self) -> str:
        """``BackupAndRestore`` state (weights + optimizer + epoch): what resuming reads."""
        return self._join("checkpoints", "backup")

    @property
    def last_weights(self) -> str:
        return self._join("checkpoints", "last.weights.h5")

    @property
    def best_model(self) -> str:
        return self._join("best.keras")

    @property
    def final_model(self) -> str:
        return self._join("final.keras")

    @property
    def history(self) -> str:
        return self._join("history.csv")

    @property
    def tensorboard(self) -> str:
        return self._join("tensorboard")

    @property
    def metrics(self) -> str:
        return self._join("metrics.json")

    @property
    def curves(self) -> str:
        return self._join("curves.png")

    def to_dict(self) -> dict:
        """Name -> path of every artifact."""
        names = ("run_dir", "config", "checkpoints", "best_model", "final_model", "history",
                 "tensorboard", "metrics", "curves")
        return {name: getattr(self, name) for name in names}


def default_run_name(model: str, dataset: str) -> str:
    """``<model>-<dataset>-<YYYYmmdd-HHMMSS>`` (dataset paths reduced to their last component)."""
    dataset = os.path.basename(os.path.normpath(dataset)) or "data"
    return f"{model}-{dataset.replace('/', '_')}-{time.strftime('%Y%m%d-%H%M%S')}"


def prepare_run_dir(runs_dir: str, run_name: str, resume: bool) -> RunPaths:
    """Create (or, with ``resume``, reopen) ``runs_dir/run_name``.

    Args:
        runs_dir: parent of all runs.
        run_name: this run's folder name.
        resume: continue an existing run from its last checkpoint.

    Raises:
        ValueError: the folder exists and ``resume`` is off (never silently overwritten), or
            ``resume`` is on and there is no run to resume.
    """
    paths = RunPaths(os.path.join(runs_dir, run_name))
    exists = os.path.exists(paths.run_dir) and bool(os.listdir(paths.run_dir))
    if exists and not resume:
        raise ValueError(
            f"run directory {paths.run_dir!r} already exists; pass resume=True (--resume) to continue "
            f"it or choose another run name (--run-name)"
        )
    if resume and not os.path.exists(paths.config):
        raise ValueError(f"cannot resume: {paths.config!r} does not exist (no run named {run_name!r})")
    os.makedirs(paths.checkpoints, exist_ok=True)
    return paths


def write_json(path: str, data: dict) -> None:
    """Write ``data`` as indented JSON (atomically: a killed writer leaves the old file)."""
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)


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


def plot_curves(history_csv: str, out_png: str) -> bool:
    """Plot loss, accuracy and learning rate per epoch from ``history.csv`` into ``out_png``.

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
    for ax, metric, title in ((axes[0], "loss", "loss"), (axes[1], "accuracy", "accuracy")):
        for prefix, label in (("", "train"), ("val_", "validation")):
            if prefix + metric in history:
                ax.plot(epochs, history[prefix + metric], marker=".", label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend()
        ax.grid(alpha=0.3)
    if "lr" in history:
        axes[2].plot(epochs, history["lr"], marker=".")
        axes[2].set_yscale("log")
    axes[2].set_title("learning rate (end of epoch)")
    axes[2].set_xlabel("epoch")
    axes[2].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return True
