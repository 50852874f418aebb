"""Results of a search, in the CIFAR-10 study's layout, from a finished or partial search directory.

``render_report(tune_dir)`` reads ``search.json`` and every ``trial_*/trial.json`` KerasTuner wrote
(no TensorFlow or KerasTuner needed) and writes, next to them:

- ``results.csv``: one row per trial (id, status, score, epochs trained, every value).
- ``results.json``: trials, the study table, the best trial, the epochs of the whole search.
- ``results.md``: the study table (rows augmentation x activation, columns lr ratio) and the best.
- ``heatmap.png``: the same table as a heatmap.
- ``best_config.json``: the best trial as ``keras_resnets.train`` keywords, plus the equivalent
  ``keras-resnets train`` command line.

A cell shows the best score over the trials that share its row and column values (other searched
keys, and Hyperband's shorter rungs, are maximised/minimised over). Cells without a finished trial
are left empty.
"""
from __future__ import annotations

import csv
import glob
import json
import math
import os
import shlex

from keras_resnets.tuning.space import CONTINUOUS, SHARE_NAMES

SEARCH_FILE = "search.json"
EPOCHS_FILE = "epochs.json"  # per trial, written by the tuners: epochs trained over all executions
ROW_KEYS = ("augment", "activation")
COLUMN_KEY = "lr_ratio"
RECIPE_VALUE_KEYS = ("lr", "weight_decay", "batch_size", "augment")
MODEL_VALUE_KEYS = ("activation", "depth", "unit", "shortcut")


def read_search(tune_dir: str) -> dict:
    """The search's settings (``search.json``) of ``tune_dir``.

    Raises:
        ValueError: ``tune_dir`` holds no search.
    """
    path = os.path.join(tune_dir, SEARCH_FILE)
    if not os.path.exists(path):
        raise ValueError(f"{tune_dir!r} holds no search ({SEARCH_FILE} is missing); pass the run's tune/ "
                         f"directory or the run directory that contains it")
    with open(path) as f:
        return json.load(f)


def _lr_ratio(values: dict):
    if all(name in values for name in SHARE_NAMES):
        return ":".join(f"{values[name]:.3g}" for name in SHARE_NAMES)
    return values.get(COLUMN_KEY)


def _epochs_trained(trial_dir: str, raw: dict, search: dict) -> int:
    """Epochs a finished trial trained, over all its executions.

    Read from the trial's ``epochs.json`` (written by the tuners); for a search without it, the
    trial's budget (Hyperband: its epochs minus its parent's; else ``max_epochs``) times the
    executions, which is exact unless early stopping cut the trial short.
    """
    path = os.path.join(trial_dir, EPOCHS_FILE)
    if os.path.exists(path):
        with open(path) as f:
            return int(json.load(f)["epochs"])
    if raw.get("status") != "COMPLETED":
        return 0
    values = raw.get("hyperparameters", {}).get("values", {})
    budget = values.get("tuner/epochs", search["max_epochs"]) - values.get("tuner/initial_epoch", 0)
    return int(budget) * int(search.get("executions_per_trial", 1))


def read_trials(tune_dir: str, search: dict) -> list:
    """Every trial of a search directory, in trial-id order.

    Args:
        tune_dir: the search's directory.
        search: the search's settings (``read_search``).

    Returns:
        A list of dicts: ``trial_id``, ``status``, ``score`` (``None`` unless completed), ``epochs``
        (trained), ``values`` (the searched keys, with a continuous ratio joined as ``"a:b:c"``),
        ``budget`` (Hyperband's epochs of the trial, else ``None``).
    """
    trials = []
    for path in sorted(glob.glob(os.path.join(tune_dir, "trial_*", "trial.json"))):
        with open(path) as f:
            raw = json.load(f)
        hp_values = raw.get("hyperparameters", {}).get("values", {})
        values = {k: v for k, v in hp_values.items() if not k.startswith("tuner/") and k not in SHARE_NAMES}
        if any(name in hp_values for name in SHARE_NAMES):
            values[COLUMN_KEY] = _lr_ratio(hp_values)
        score = raw.get("score")
        completed = raw.get("status") == "COMPLETED" and score is not None and math.isfinite(score)
        trials.append({
            "trial_id": raw["trial_id"],
            "status": raw.get("status"),
            "score": float(score) if completed else None,
            "epochs": _epochs_trained(os.path.dirname(path), raw, search),
            "budget": hp_values.get("tuner/epochs"),
            "values": values,
        })
    return sorted(trials, key=lambda t: t["trial_id"])


def _better(direction: str):
    return max if direction == "max" else min


def study_table(trials: list, space: dict, direction: str) -> dict:
    """The study layout: ``rows`` (tuples of row values), ``columns``, ``cells[row][column]`` scores.

    Rows are augmentation x activation (the keys of the two the space has), columns the lr ratios
    (one column, ``"score"``, when the ratio is not searched or is continuous).

    Args:
        trials: from ``read_trials``.
        space: the search's ``key -> values``.
        direction: ``"max"`` or ``"min"``.
    """
    row_keys = [k for k in ROW_KEYS if k in space]
    by_column = COLUMN_KEY in space and space[COLUMN_KEY] != [CONTINUOUS]
    columns = list(space[COLUMN_KEY]) if by_column else ["score"]
    rows = [()]
    for key in row_keys:
        rows = [row + (value,) for row in rows for value in space[key]]
    pick = _better(direction)
    cells = {row: {column: None for column in columns} for row in rows}
    for trial in trials:
        if trial["score"] is None:
            continue
        row = tuple(trial["values"].get(k) for k in row_keys)
        column = trial["values"].get(COLUMN_KEY) if by_column else "score"
        if row in cells and column in cells[row]:
            old = cells[row][column]
            cells[row][column] = trial["score"] if old is None else pick(old, trial["score"])
    return {"row_keys": row_keys, "rows": rows, "columns": columns, "cells": cells}


def best_trial(trials: list, direction: str):
    """The completed trial with the best score (``None`` if none completed); ties go to the first."""
    completed = [t for t in trials if t["score"] is not None]
    if not completed:
        return None
    pick = _better(direction)
    best_score = pick(t["score"] for t in completed)
    return next(t for t in completed if t["score"] == best_score)


def best_train_config(search: dict, trial: dict) -> dict:
    """``keras_resnets.train`` keywords that retrain the best trial's configuration.

    Args:
        search: the search settings (``search.json``).
        trial: a trial from ``read_trials``.
    """
    values = trial["values"]
    model_kwargs = dict(search.get("model_kwargs") or {})
    model_kwargs.update({k: values[k] for k in MODEL_VALUE_KEYS if k in values and k != "activation"})
    config = {
        "model": search["model"],
        "dataset": search["dataset"],
        "recipe": search["recipe"],
        "epochs": int(trial["budget"] or search["max_epochs"]),
        **{k: values[k] for k in RECIPE_VALUE_KEYS if k in values},
        "model_kwargs": model_kwargs,
        "classifier_activation": search.get("classifier_activation", "softmax"),
        "data_dir": search.get("data_dir"),
        "image_size": search.get("image_size"),
        "channels": search.get("channels"),
        "validation_split": search.get("validation_split", 0.1),
        "seed": search.get("seed", 0),
        "xla": search.get("xla", "auto"),
    }
    if search.get("dataset_kwargs"):
        config["dataset_kwargs"] = search["dataset_kwargs"]
    if COLUMN_KEY in values:
        config["schedule"] = "lr_ratio"
        config["lr_ratio"] = values[COLUMN_KEY]
    if "activation" in values:
        config["activation"] = values["activation"]
    return config


def train_command(config: dict) -> str:
    """The ``keras-resnets train`` command line equivalent to ``best_train_config``'s keywords."""
    args = ["keras-resnets", "train"]
    flags = ("model", "dataset", "recipe", "epochs", "batch_size", "lr", "weight_decay", "schedule", "lr_ratio",
             "augment", "activation", "data_dir", "channels", "validation_split", "seed", "xla")
    for key in flags:
        if config.get(key) is not None:
            args += [f"--{key.replace('_', '-')}", str(config[key])]
    if config.get("image_size"):
        args += ["--image-size", "x".join(str(s) for s in config["image_size"])]
    for key, value in config["model_kwargs"].items():
        args += ["--model-arg", f"{key}={json.dumps(value)}"]
    for key, value in (config.get("dataset_kwargs") or {}).items():
        args += ["--dataset-arg", f"{key}={json.dumps(value)}"]
    if config.get("classifier_activation") is None:
        args.append("--logits")
    return " ".join(shlex.quote(a) for a in args)


def _format(score, as_percent: bool) -> str:
    if score is None:
        return "—"
    return f"{100 * score:.2f}" if as_percent else f"{score:.4f}"


def _markdown(search: dict, table: dict, best, trials: list, as_percent: bool) -> str:
    objective, direction = search["objective"], search["direction"]
    unit = " (%)" if as_percent else ""
    completed = sum(t["score"] is not None for t in trials)
    lines = [
        f"# Search: {search['model']} on {search['dataset']} ({search['tuner']} tuner)",
        "",
        f"{objective}{unit}, {direction}imised; best over trials per cell. {completed} of {len(trials)} trials "
        f"completed, {sum(t['epochs'] for t in trials)} epochs trained in all.",
        "",
    ]
    header = [k.replace("augment", "augmentation") for k in table["row_keys"]] + list(table["columns"])
    lines += ["| " + " | ".join(header or ["score"]) + " |", "|" + "---|" * max(len(header), 1)]
    best_score = best["score"] if best else None
    for row in table["rows"]:
        cells = []
        for column in table["columns"]:
            score = table["cells"][row][column]
            text = _format(score, as_percent)
            cells.append(f"**{text}**" if score is not None and score == best_score else text)
        lines.append("| " + " | ".join([str(v) for v in row] + cells) + " |")
    lines.append("")
    if best:
        values = ", ".join(f"{k}={v}" for k, v in best["values"].items())
        lines += [f"Best: trial {best['trial_id']}, {values}: {objective} {_format(best_score, as_percent)}{unit}.",
                  "", "Retrain it:", "", "```", train_command(best_train_config(search, best)), "```", ""]
    return "\n".join(lines)


def searched_model(search: dict) -> str:
    """The model a search trained: its name, the keywords it fixed, and the model keys it searched."""
    from keras_resnets.tuning.space import MODEL_KEYS

    fixed = ", ".join(f"{k}={v}" for k, v in sorted((search.get("model_kwargs") or {}).items()))
    varied = "; ".join(f"{k} {'/'.join(str(v) for v in search['space'][k])}" for k in MODEL_KEYS
                       if k in search["space"] and k not in ROW_KEYS and isinstance(search["space"][k], list))
    return search["model"] + (f" ({fixed})" if fixed else "") + (f", searched {varied}" if varied else "")


def plot_heatmap(search: dict, table: dict, path: str, as_percent: bool) -> None:
    """Draw the study table as an annotated heatmap PNG (empty cells grey)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, columns = table["rows"], table["columns"]
    grid = np.array([[np.nan if table["cells"][r][c] is None else table["cells"][r][c] for c in columns]
                     for r in rows], dtype=float)
    shown = grid * 100 if as_percent else grid
    fig, ax = plt.subplots(figsize=(max(5.0, 2.2 + 1.3 * len(columns)), 1.4 + 0.45 * len(rows)))
    cmap = matplotlib.colormaps["viridis" if search["direction"] == "max" else "viridis_r"].with_extremes(bad="#dddddd")
    image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(columns)):
            text = "—" if np.isnan(shown[i, j]) else (f"{shown[i, j]:.2f}" if as_percent else f"{shown[i, j]:.4f}")
            ax.text(j, i, text, ha="center", va="center", fontsize=8,
                    color="black" if np.isnan(shown[i, j]) or shown[i, j] >= np.nanmean(shown) else "white")
    ax.set_xticks(range(len(columns)), [str(c) for c in columns])
    ax.set_yticks(range(len(rows)), [" / ".join(str(v) for v in r) or "all" for r in rows])
    ax.set_xlabel("lr ratio (epochs at lr : lr/10 : lr/100)" if columns != ["score"] else "")
    ax.set_ylabel(" / ".join(k.replace("augment", "augmentation") for k in table["row_keys"]))
    ax.set_title(f"{searched_model(search)} on {search['dataset']}\n{search['tuner']} search, "
                 f"{search['objective']} of the best trial per cell", fontsize=9)
    bar = fig.colorbar(image, ax=ax)
    bar.set_label(f"{search['objective']}{' (%)' if as_percent else ''}\n"
                  f"({'higher' if search['direction'] == 'max' else 'lower'} is better)")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # a long title stays whole
    plt.close(fig)


def render_report(tune_dir: str) -> dict:
    """Write the results table (CSV, JSON, Markdown), heatmap and best config of a search.

    Works on a finished search and on a partial one (running, killed, or resumed later).

    Args:
        tune_dir: the search's directory (``runs/<name>/tune``) or the run directory holding it.

    Returns:
        ``{"best": trial or None, "table": ..., "trials": [...], "paths": {name: path}}``.

    Raises:
        ValueError: the directory holds no search.
    """
    from keras_resnets.runs import write_json

    if not os.path.exists(os.path.join(tune_dir, SEARCH_FILE)) and os.path.isdir(os.path.join(tune_dir, "tune")):
        tune_dir = os.path.join(tune_dir, "tune")
    search = read_search(tune_dir)
    trials = read_trials(tune_dir, search)
    table = study_table(trials, search["space"], search["direction"])
    best = best_trial(trials, search["direction"])
    as_percent = search["objective"].endswith("accuracy")
    paths = {name: os.path.join(tune_dir, name) for name in
             ("results.csv", "results.json", "results.md", "heatmap.png", "best_config.json")}

    keys = list(search["space"])
    with open(paths["results.csv"], "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["trial_id", "status", search["objective"], "epochs", *keys])
        for t in trials:
            writer.writerow([t["trial_id"], t["status"], "" if t["score"] is None else t["score"], t["epochs"],
                             *[t["values"].get(k, "") for k in keys]])
    write_json(paths["results.json"], {
        "search": search,
        "trials": trials,
        "epochs_trained": sum(t["epochs"] for t in trials),
        "table": {"row_keys": table["row_keys"], "columns": table["columns"],
                  "rows": [{"row": list(r), "cells": table["cells"][r]} for r in table["rows"]]},
        "best": best,
    })
    with open(paths["results.md"], "w") as f:
        f.write(_markdown(search, table, best, trials, as_percent))
    plot_heatmap(search, table, paths["heatmap.png"], as_percent)
    if best is not None:
        config = best_train_config(search, best)
        write_json(paths["best_config.json"], {**config, "command": train_command(config),
                                               search["objective"]: best["score"], "trial_id": best["trial_id"]})
    else:
        paths.pop("best_config.json")
    return {"best": best, "table": table, "trials": trials, "paths": paths}
