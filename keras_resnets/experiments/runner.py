"""``run_experiment``: train every arm x seed of an experiment, write its results file, figure and verdicts.

Every run goes through the package's own training pieces (``load_dataset``, ``create_model``,
``compile_model``, ``fit_model``) with the experiment's budget. Per run it records:

- ``test_accuracy`` and ``test_crossentropy`` on the dataset's fixed test split (the same images for
  every seed, so arms are paired per seed);
- ``train_error`` and ``train_crossentropy``: means over the last 10 % of the training batches (as
  the papers plot training error: on the augmented batches, during training); the cross-entropy is
  a metric *without* the L2 penalty that Keras' ``loss`` includes;
- curves of both every ``curve_every`` steps, ``params``, ``seconds`` (wall clock), ``cpu_seconds`` (the
  process's CPU time over all threads, which a loaded machine does not inflate the way it does wall
  time), and ``diverged`` (a NaN loss stops the run; it is reported, never used as evidence);
- ``probes``: the experiment's probe (``probes.py``) at its declared steps, when it applies.

A grid experiment (the CIFAR-10 study) is arms x seeds too, each cell an arm with its own training
settings (``Arm.train``); the file also gets each factor's share of the variance over every cell and
the rank correlation with the paper's cells, as descriptions beside the verdicts. The staged protocol
(the context module, ``train_staged``) trains through ``keras_resnets.train``: per seed a front-end,
then two continuations of its checkpoint; its records hold test mean IoU (``test_miou``) and the
results file's chance is the mean IoU of predicting the most frequent class.

The results file is rewritten after every run, so a killed experiment continues where it stopped
when run again (finished arm x seed pairs are kept; settings must match). Verdicts are recomputed
from the pre-registered rules each time.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np

from keras_resnets.experiments.probes import PLOTS, get_probe
from keras_resnets.experiments.spec import Experiment, check_scale, get_experiment
from keras_resnets.experiments.store import cpu_name, write_results
from keras_resnets.experiments.verdicts import apply_rule, factor_shares, rank_correlation, summarise

RESULTS_DIR = os.path.join("notebooks", "results")
FIGURES_DIR = os.path.join("notebooks", "figures")


def results_path(experiment: Experiment, scale: str, dataset: str | None, results_dir: str) -> str:
    """``<results_dir>/<stem>.json`` at the laptop scale on its own dataset, else a suffixed name."""
    suffix = "" if scale == "laptop" else f"-{scale}"
    if dataset and dataset != experiment.budget_at(scale).dataset:
        suffix += f"-{dataset}"
    return os.path.join(results_dir, f"{experiment.stem}{suffix}.json")


def _protocol(experiment: Experiment, scale: str, budget) -> dict:
    protocol = {"scale": scale, "budget": budget.to_dict(),
                "arms": [{"name": a.label, "model": a.model, "kwargs": a.kwargs,
                          **({"train": a.train} if a.train else {})} for a in experiment.arms_at(scale)]}
    if experiment.probe:
        protocol["probe"] = {"name": experiment.probe, "steps": probe_steps(experiment, budget)}
    return protocol


def probe_steps(experiment: Experiment, budget) -> list:
    """The steps at which the experiment's probe runs (``None`` in the declaration: the last step)."""
    steps = {budget.steps if s is None else int(s) for s in experiment.probe_steps}
    return sorted(s for s in steps if 0 <= s <= budget.steps)


def _probe_callback(probe, steps, data):
    """Takes ``probe(model, data)`` before the first step (step 0) and after each step in ``steps``."""
    import keras

    class Probe(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.values = {}

        def take(self, step):
            if step in steps:
                self.values[str(step)] = probe(self.model, data)

        def on_train_begin(self, logs=None):
            self.take(0)

        def on_train_batch_end(self, batch, logs=None):
            self.take(batch + 1)

    return Probe()


def _finite(value):
    return None if value is None or not math.isfinite(value) else float(value)


def _batch_curves(every: int):
    """A Keras callback recording, every ``every`` steps, the mean training error and cross-entropy of
    those steps (Keras logs running means since the start of the epoch; they are undone here)."""
    import keras

    class Curves(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.error, self.crossentropy = [], []
            self.sums = {"accuracy": [0.0], "crossentropy": [0.0]}

        def on_train_batch_end(self, batch, logs=None):
            count = batch + 1
            for key in self.sums:
                self.sums[key].append(float(logs[key]) * count)

        def per_step(self, key):
            sums = np.asarray(self.sums[key])
            return np.diff(sums)

    return Curves()


def _window_means(values: np.ndarray, every: int):
    steps, means = [], []
    for start in range(0, len(values), every):
        chunk = values[start:start + every]
        steps.append(start + len(chunk))
        means.append(_finite(float(np.mean(chunk))))
    return steps, means


def load_data(budget, seed: int):
    """The training, validation and test pipelines of ``budget`` (its dataset, augmentation, expansion)."""
    from keras_resnets.data import load_dataset

    return load_dataset(budget.dataset, image_size=budget.image_size, batch_size=budget.batch_size,
                        augment=budget.augment, expand=budget.expand(), seed=seed)


def train_one(arm, budget, seed: int, data=None, probe=None, probe_at=()) -> dict:
    """Train ``arm`` for ``budget.steps`` steps with ``seed`` (the arm's own ``train`` settings applied);
    return the run's record (see the module doc).

    ``probe`` (a function of ``keras_resnets.experiments.probes``) is taken at the steps ``probe_at``
    and stored under ``record["probes"]`` when it applies to the network."""
    import keras

    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model, fit_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    budget = arm.budget(budget)
    if data is None:
        data = load_data(budget, seed)
    keras.utils.set_random_seed(seed)
    model = create_model(arm.model, input_shape=data.info.image_shape, classes=data.info.num_classes, **arm.kwargs)
    recipe = with_overrides(get_recipe("he2016_cifar"), lr=budget.lr, weight_decay=budget.weight_decay,
                            schedule=budget.schedule, lr_ratio=budget.lr_ratio, warmup_steps=budget.warmup_steps,
                            batch_size=budget.batch_size, augment=budget.augment)
    compile_model(model, recipe, total_steps=budget.steps,
                  extra_metrics=[keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")])
    curves = _batch_curves(budget.curve_every)
    callbacks = [curves, keras.callbacks.TerminateOnNaN()]
    probes = _probe_callback(probe, set(probe_at), data) if probe else None
    epochs = -(-budget.steps // data.steps_per_epoch)
    start, cpu_start = time.time(), time.process_time()
    fit_model(model, data.train(epochs).take(budget.steps), 1, callbacks=callbacks + ([probes] if probes else []),
              verbose=0, steps_per_epoch=budget.steps)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    # per-step accuracy is recovered from Keras' running means, so it can exceed 1 by a rounding error
    error = np.clip(1.0 - curves.per_step("accuracy"), 0.0, 1.0)
    crossentropy = curves.per_step("crossentropy")
    steps_done = len(error)
    diverged = steps_done < budget.steps or not np.all(np.isfinite(crossentropy))
    tail = max(1, steps_done // 10)
    record = {"seed": int(seed), "steps": int(steps_done), "params": int(model.count_params()),
              "seconds": round(seconds, 1), "cpu_seconds": round(cpu_seconds, 1), "diverged": bool(diverged),
              "train_error": _finite(float(np.mean(error[-tail:]))) if steps_done else None,
              "train_crossentropy": _finite(float(np.mean(crossentropy[-tail:]))) if steps_done else None}
    if diverged:
        record.update(test_accuracy=None, test_crossentropy=None)
    else:
        scores = model.evaluate(data.test, verbose=0, return_dict=True)
        record.update(test_accuracy=float(scores["accuracy"]), test_crossentropy=float(scores["crossentropy"]))
    curve_steps, curve_error = _window_means(error, budget.curve_every)
    _, curve_ce = _window_means(crossentropy, budget.curve_every)
    record["curve"] = {"step": curve_steps, "train_error": curve_error, "train_crossentropy": curve_ce}
    if probes and any(v is not None for v in probes.values.values()):
        record["probes"] = probes.values
    return record


def majority_miou(masks, classes: int) -> float:
    """The mean IoU of predicting the most frequent class everywhere (segmentation's chance level): that
    class's IoU is its pixel share, every other class present scores 0."""
    masks = np.asarray(masks).ravel()
    counts = np.bincount(masks[masks < classes], minlength=classes)
    return float(counts.max() / counts.sum() / np.count_nonzero(counts))


def _evaluate_miou(model, data) -> float:
    from keras_resnets.metrics import MeanIoU

    metric = MeanIoU(data.info.num_classes, ignore_label=255)
    for images, masks in data.test:
        metric.update_state(masks, model(images, training=False))
    return float(metric.result())


def train_staged(arms, budget, seed: int, runs_dir: str) -> tuple:
    """The staged protocol for one seed, through ``keras_resnets.train``: the front-end (``arms[0]``) trains
    ``budget.steps`` steps; from its checkpoint ``arms[1]`` (with the context module, every layer loaded
    from the front-end frozen) and ``arms[2]`` (the front-end alone) train ``budget.extra_steps`` more.

    Returns:
        ``(records, chance)``: one record per arm (test mean IoU of the checkpoint for the front-end, of
        the final models for the others; the context arm's ``start_miou`` before its training) and the
        mean IoU of predicting the most frequent test class everywhere.
    """
    import keras

    from keras_resnets import create_model, train
    from keras_resnets.data.registry import load
    from keras_resnets.training.build import load_matching_weights

    data = load(budget.dataset, dataset_kwargs=budget.dataset_kwargs, batch_size=budget.batch_size,
                image_size=budget.image_size, seed=seed)
    per_epoch = data.steps_per_epoch
    epochs, extra = budget.steps / per_epoch, budget.extra_steps / per_epoch
    if epochs != int(epochs) or extra != int(extra):
        raise ValueError(f"steps {budget.steps} and extra_steps {budget.extra_steps} must be whole epochs of "
                         f"{per_epoch} steps")
    chance = majority_miou(np.concatenate([m.numpy() for _, m in data.test]), data.info.num_classes)

    def run(arm, name, epochs, **options):
        start = time.time()
        result = train(arm.model, budget.dataset, epochs=int(epochs), batch_size=budget.batch_size, lr=budget.lr,
                       weight_decay=budget.weight_decay, schedule=budget.schedule, image_size=budget.image_size,
                       model_kwargs=arm.kwargs, dataset_kwargs=budget.dataset_kwargs, datasets=data, runs_dir=runs_dir, run_name=f"{name}-seed{seed}",
                       seed=seed, verbose=0, **options)
        history = result.history
        losses = np.asarray(history.get("loss", []), dtype=float)
        record = {"seed": int(seed), "steps": int(epochs) * per_epoch, "params": int(result.metrics["params"]),
                  "seconds": round(time.time() - start, 1), "diverged": bool(not np.all(np.isfinite(losses))),
                  "train_loss": _finite(float(losses[-1])) if len(losses) else None,
                  "train_miou": _finite(result.metrics.get("final_train_mean_iou")),
                  "curve": {"epoch": [int(e) + 1 for e in history.get("epoch", [])],
                            "val_miou": [_finite(v) for v in history.get("val_mean_iou", [])]}}
        return result, record

    front_arm, context_arm, longer_arm = arms
    front, front_record = run(front_arm, front_arm.label, epochs)
    # the checkpoint both continuations start from (best by validation, else final: RunDir.model_file)
    checkpoint = create_model(front_arm.model, input_shape=data.info.image_shape, classes=data.info.num_classes,
                              **front_arm.kwargs)
    load_matching_weights(checkpoint, front.run_dir)
    front_record["test_miou"] = _evaluate_miou(checkpoint, data)
    with_context = create_model(context_arm.model, input_shape=data.info.image_shape, classes=data.info.num_classes,
                                **context_arm.kwargs)
    load_matching_weights(with_context, front.run_dir)
    start_miou = _evaluate_miou(with_context, data)
    del checkpoint, with_context
    keras.backend.clear_session()
    records = [front_record]
    for arm, freeze in ((context_arm, "backbone"), (longer_arm, "none")):
        result, record = run(arm, arm.label, extra, init_from=front.run_dir, freeze=freeze)
        record["test_miou"] = _finite(result.metrics.get("test_mean_iou"))
        record["diverged"] = record["diverged"] or record["test_miou"] is None
        if arm is context_arm:
            record["start_miou"] = start_miou
        records.append(record)
    return records, chance


def _new_results(experiment: Experiment, scale: str, budget, protocol: dict) -> dict:
    import keras

    return {
        "experiment": experiment.name, "stem": experiment.stem, "title": experiment.title,
        "paper": experiment.paper, "expectation": experiment.expectation, "metric_note": experiment.metric_note,
        "scale": scale, "dataset": budget.dataset, "protocol": protocol, "chance": None,
        "arms": [{"name": a.label, "model": a.model, "kwargs": a.kwargs, "paper": a.paper,
                  **({"train": a.train, "factors": a.factors} if a.factors else {}), "runs": []}
                 for a in experiment.arms_at(scale)],
        **({"figure": experiment.figure} if experiment.figure != "curves" else {}),
        "verdicts": [], "summary": "not tested",
        "backend": f"keras {keras.__version__} / {keras.backend.backend()}"
                   + (f" (TF_ENABLE_ONEDNN_OPTS={os.environ['TF_ENABLE_ONEDNN_OPTS']})"
                      if "TF_ENABLE_ONEDNN_OPTS" in os.environ else ""),
        "cpu": cpu_name(), "wall_seconds": 0.0, "complete": False,
    }


def load_results(path: str) -> dict:
    """A results file (``notebooks/results/<stem>.json``)."""
    with open(path) as f:
        return json.load(f)


def refresh(results: dict, experiment: Experiment) -> dict:
    """Recompute the per-arm summaries and the verdicts of ``results`` from its runs (in place)."""
    for arm in results["arms"]:
        arm["runs"].sort(key=lambda r: r["seed"])
        arm["seeds"] = [r["seed"] for r in arm["runs"]]
        arm["steps"] = [r["steps"] for r in arm["runs"]]
        keys = ("test_miou", "start_miou", "train_miou", "train_loss") if results.get("chance_metric") == "test_miou" \
            else ("test_accuracy", "train_error", "train_crossentropy", "test_crossentropy")
        for key in keys + ("params",):
            arm[key] = [r.get(key) for r in arm["runs"]]
    if results["chance"] is not None:
        arms = {arm["name"]: arm for arm in results["arms"]}
        results["verdicts"] = [apply_rule(rule, arms, results["chance"]) for rule in experiment.rules]
        if experiment.published:
            pairs = [(np.mean(arm["test_accuracy"]), experiment.published[arm["name"]]) for arm in results["arms"]
                     if arm["runs"] and None not in arm["test_accuracy"] and arm["name"] in experiment.published]
            results["rank_correlation"] = (
                {"spearman": rank_correlation(*zip(*pairs)), "cells": len(pairs),
                 "note": "with the paper's cells; a description, not a verdict"} if len(pairs) > 2 else None)
        cells = [(arm["factors"], arm["test_accuracy"]) for arm in results["arms"]
                 if arm.get("factors") and arm["runs"] and None not in arm["test_accuracy"]]
        if cells and len(cells) == len(results["arms"]):
            factors = sorted(cells[0][0])
            results["variance_shares"] = {**factor_shares(cells, factors),
                                          "note": "of test accuracy over every cell, guard or not; a description"}
        results["summary"] = summarise(results["verdicts"])
        if not results.get("complete"):
            results["summary"] = f"incomplete run; so far: {results['summary']}"
    return results


def _is_complete(results: dict, seed_lists: dict) -> bool:
    return all(set(seed_lists.get(a["name"], [])) <= {r["seed"] for r in a["runs"]} for a in results["arms"])


def _seed_list(seeds, default: int) -> list:
    if seeds is None:
        return list(range(default))
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (a count) or a list of seeds; got {seeds!r}")
        return list(range(seeds))
    return [int(s) for s in seeds]


def run_experiment(name: str, scale: str = "laptop", seeds=None, dataset: str | None = None, *,
                   arms=None, results_dir: str = RESULTS_DIR, figures_dir: str | None = FIGURES_DIR,
                   progress=print) -> dict:
    """Run (or continue) experiment ``name`` and return its results (also written to its results file).

    Args:
        name: an experiment of ``keras_resnets.experiments.list_experiments()`` (or its notebook stem).
        scale: ``laptop`` (offline, the committed results), ``paper`` (the papers' settings: CIFAR-10
            through TFDS, a GPU) or ``smoke`` (a few steps, for tests).
        seeds: a count (seeds 0..n-1) or a list of seeds, for every arm; default the scale's (3; smoke:
            1), or an arm's own (``Arm.train["seeds"]``: the cells of a grid repeated for seed noise).
        dataset: another dataset than the scale's (e.g. ``cifar10`` at the laptop scale).
        arms: labels of a subset of arms to run (the others stay as they are in the file).
        results_dir: where ``<stem>.json`` goes.
        figures_dir: where ``<stem>.png`` goes (``None``: no figure).
        progress: called with one line per finished run.

    Raises:
        ValueError: unknown experiment, scale or arm; an existing results file made with other settings.
    """
    experiment = get_experiment(name)
    check_scale(scale)
    budget = experiment.budget_at(scale, dataset)
    seed_lists = {a.label: _seed_list(seeds, a.budget(budget).seeds) for a in experiment.arms_at(scale)}
    labels = [a.label for a in experiment.arms_at(scale)]
    chosen = labels if arms is None else list(arms)
    unknown = [a for a in chosen if a not in labels]
    if unknown:
        raise ValueError(f"unknown arm {unknown[0]!r} of {experiment.name}; allowed: {', '.join(labels)}")
    path = results_path(experiment, scale, dataset, results_dir)
    protocol = _protocol(experiment, scale, budget)
    if os.path.isfile(path):
        results = load_results(path)
        if results.get("protocol") != protocol:
            raise ValueError(f"{path} was written with other settings (budget or arms); move it away to start "
                             f"afresh or pass another results_dir")
    else:
        results = _new_results(experiment, scale, budget, protocol)
    by_label = {arm["name"]: arm for arm in results["arms"]}
    if experiment.protocol == "staged":
        return _run_staged(experiment, scale, budget, seed_lists, results, by_label, path, figures_dir, progress)
    data_cache = {}
    pending = [(arm, seed) for arm in experiment.arms_at(scale) if arm.label in chosen for seed in seed_lists[arm.label]]
    if experiment.order == "seeds":
        order = sorted({seed for _, seed in pending})
        pending.sort(key=lambda pair: order.index(pair[1]))  # stable: arms stay in declared order
    for arm, seed in pending:
        if seed in {r["seed"] for r in by_label[arm.label]["runs"]}:
            continue
        arm_budget = arm.budget(budget)
        key = (seed, arm_budget.augment, arm_budget.expand())
        if key not in data_cache:
            data_cache.clear()
            data_cache[key] = load_data(arm_budget, seed)
        data = data_cache[key]
        record = train_one(arm, budget, seed, data, probe=get_probe(experiment.probe) if experiment.probe else None,
                           probe_at=probe_steps(experiment, budget))
        results["chance"] = 1.0 / data.info.num_classes
        by_label[arm.label]["runs"].append(record)
        _save(results, experiment, seed_lists, [record], path, figures_dir)
        if progress:
            acc = "diverged" if record["diverged"] else f"test acc {record['test_accuracy']:.3f}"
            error = "n/a" if record["train_error"] is None else f"{record['train_error']:.3f}"
            progress(f"{experiment.name} [{scale}] {arm.label} seed {seed}: {acc}, train error {error}, "
                     f"{record['seconds']:.0f} s")
    return _finish(results, experiment, seed_lists, path)


def _save(results, experiment, seed_lists, records, path, figures_dir) -> None:
    """After new runs: wall time, completeness, verdicts, the results file and the figure."""
    results["wall_seconds"] = round(results["wall_seconds"] + sum(r["seconds"] for r in records), 1)
    results["complete"] = _is_complete(results, seed_lists)
    refresh(results, experiment)
    write_results(results, path)
    if figures_dir:
        plot_figures(results, experiment, figures_dir, os.path.basename(path)[:-5])


def _finish(results, experiment, seed_lists, path) -> dict:
    results["complete"] = _is_complete(results, seed_lists)
    refresh(results, experiment)
    if results["chance"] is not None:
        write_results(results, path)
    results["path"] = path
    return results


def _run_staged(experiment, scale, budget, seed_lists, results, by_label, path, figures_dir, progress) -> dict:
    import tempfile

    arms = experiment.arms_at(scale)
    for seed in seed_lists[arms[0].label]:
        if all(seed in {r["seed"] for r in by_label[arm.label]["runs"]} for arm in arms):
            continue
        with tempfile.TemporaryDirectory(prefix="staged-") as runs_dir:
            records, chance = train_staged(arms, budget, seed, runs_dir)
        results["chance"] = chance
        results["chance_metric"] = "test_miou"
        for arm, record in zip(arms, records):
            runs = by_label[arm.label]["runs"]
            runs[:] = [r for r in runs if r["seed"] != seed] + [record]
        _save(results, experiment, seed_lists, records, path, figures_dir)
        if progress:
            progress(f"{experiment.name} [{scale}] seed {seed}: test mean IoU "
                     + ", ".join(f"{arm.label} {r['test_miou']:.3f}" for arm, r in zip(arms, records) if r["test_miou"] is not None)
                     + f" (context at its start {records[1]['start_miou']:.3f}; chance {chance:.3f}), "
                     f"{sum(r['seconds'] for r in records):.0f} s")
    return _finish(results, experiment, seed_lists, path)


def plot_figures(results: dict, experiment: Experiment, figures_dir: str, stem: str) -> list:
    """The experiment's figures: ``<stem>.png`` (curves and test accuracy) and, with a probe that has a
    picture, ``<notebook number>_<picture><version>.png``: the version is what the stem adds to its
    notebook's (``_long`` for ``01_degradation_long``), and a suffixed scale or dataset keeps its suffix."""
    paths = [plot_results(results, os.path.join(figures_dir, f"{stem}.png"))]
    if experiment.probe in PLOTS and any(r.get("probes") for a in results["arms"] for r in a["runs"]):
        name, plot = PLOTS[experiment.probe]
        version = experiment.stem[len(experiment.notebook_stem):]
        suffix = stem[len(experiment.stem):]
        paths.append(plot(results, os.path.join(figures_dir, f"{experiment.stem[:2]}_{name}{version}{suffix}.png")))
    return paths


def plot_results(results: dict, path: str) -> str:
    """Training error (log axis, mean over seeds, min-max band) per arm, and test accuracy per seed
    (a grid experiment: ``plot_grid``; the staged protocol: ``plot_staged``)."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    if results.get("figure") == "grid":
        return plot_grid(results, path)
    if results.get("chance_metric") == "test_miou":
        return plot_staged(results, path)

    arms = [a for a in results["arms"] if a["runs"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    colours = plt.get_cmap("tab20" if len(arms) > 10 else "tab10")
    for i, arm in enumerate(arms):
        curves = [r["curve"] for r in arm["runs"] if not r["diverged"]]
        if not curves:
            continue
        length = min(len(c["step"]) for c in curves)
        steps = curves[0]["step"][:length]
        values = np.array([[np.nan if v is None else v for v in c["train_error"][:length]] for c in curves])
        values = np.clip(values, 1e-3, 1.0)
        colour = colours(i % colours.N)
        left.plot(steps, values.mean(axis=0), color=colour, label=f"{arm['name']} ({len(curves)} seeds)")
        left.fill_between(steps, values.min(axis=0), values.max(axis=0), color=colour, alpha=0.15)
        accuracy = [a for a in arm["test_accuracy"] if a is not None]
        right.scatter([i] * len(accuracy), accuracy, color=colour, s=18)
        if accuracy:
            right.hlines(np.mean(accuracy), i - 0.3, i + 0.3, color=colour)
    left.set_yscale("log")
    left.set_xlabel("training step")
    left.set_ylabel("training error (batches, log scale)")
    left.set_title("training error, mean over seeds (band: min-max)")
    left.legend(fontsize=7, ncol=2 if len(arms) > 6 else 1)
    chance = results.get("chance") or 0.0
    right.axhline(chance, color="grey", linestyle=":", label="chance")
    right.axhline(chance + 0.2, color="grey", linestyle="--", label="chance + 20 points (guard)")
    right.set_xlim(-0.6, len(arms) - 0.4)
    right.set_ylim(0.0, 1.0)
    right.set_xticks(range(len(arms)))
    right.set_xticklabels([a["name"] for a in arms], rotation=45, ha="right", fontsize=8)
    right.set_ylabel("test accuracy (dots: seeds, bar: mean)")
    right.set_title("test accuracy, same test set for every seed")
    right.legend(fontsize=7, loc="upper right")
    budget = results["protocol"]["budget"]
    size = budget["image_size"]
    done = sum(len(a["runs"]) for a in results["arms"])
    status = "" if results.get("complete") else f", INCOMPLETE ({done} runs; arms or seeds missing)"
    fig.suptitle(f"{results['title']}\n{results['dataset']} {'x'.join(map(str, size)) if size else 'native'}, "
                 f"{budget['steps']} steps, {results['scale']} scale{status}", fontsize=10)
    return save(fig, path, dpi=110)


def _grid_axes(results: dict):
    """Rows (augmentation x activation) and columns (lr ratio) of a grid experiment, in declared order."""
    def levels(key):
        return list(dict.fromkeys(a["factors"][key] for a in results["arms"]))

    rows = [(aug, act) for aug in levels("augment") for act in levels("activation")]
    return rows, levels("lr_ratio")


def plot_grid(results: dict, path: str) -> str:
    """Heat maps of a grid experiment: our mean test accuracy per cell beside the paper's, each on its own
    colour scale, with the chance guard's cells marked."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    rows, columns = _grid_axes(results)
    ours = np.full((len(rows), len(columns)), np.nan)
    paper = np.full_like(ours, np.nan)
    seeds = np.zeros_like(ours, dtype=int)
    for arm in results["arms"]:
        f = arm["factors"]
        i, j = rows.index((f["augment"], f["activation"])), columns.index(f["lr_ratio"])
        accuracy = [a for a in arm.get("test_accuracy", []) if a is not None]
        if accuracy:
            ours[i, j], seeds[i, j] = 100 * np.mean(accuracy), len(accuracy)
        try:
            paper[i, j] = float(arm.get("paper", "nan"))
        except ValueError:
            pass
    guard = 100 * ((results.get("chance") or 0.0) + 0.2)
    fig, axes = plt.subplots(1, 2, figsize=(11, 7.2))
    for ax, table, title in ((axes[0], ours, f"ours: test accuracy % ({results['dataset']})"),
                             (axes[1], paper, "the study: test accuracy % (CIFAR-10, ResNet-18)")):
        image = ax.imshow(table, cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax, fraction=0.05)
        for i in range(len(rows)):
            for j in range(len(columns)):
                if np.isnan(table[i, j]):
                    ax.text(j, i, "–", ha="center", va="center", color="black")
                    continue
                text = f"{table[i, j]:.1f}"
                if table is ours:
                    text += "*" if seeds[i, j] > 1 else ""
                    text += " (chance)" if table[i, j] < guard else ""
                colour = "white" if table[i, j] < np.nanmean(table) else "black"
                ax.text(j, i, text, ha="center", va="center", color=colour, fontsize=8)
        ax.set_xticks(range(len(columns)))
        ax.set_xticklabels(columns)
        ax.set_xlabel("lr ratio (share of steps at lr : lr/10 : lr/100)")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([f"{aug} / {act}" for aug, act in rows], fontsize=8)
        for boundary in range(1, len(rows)):
            if rows[boundary][0] != rows[boundary - 1][0]:
                ax.axhline(boundary - 0.5, color="white", linewidth=2)
        ax.set_title(title, fontsize=10)
    axes[1].set_yticklabels([])
    budget = results["protocol"]["budget"]
    size = budget["image_size"]
    done = sum(len(a["runs"]) for a in results["arms"])
    status = "" if results.get("complete") else f", INCOMPLETE ({done} runs)"
    fig.suptitle(f"{results['title']}\n{results['dataset']} {'x'.join(map(str, size)) if size else 'native'}, "
                 f"{budget['steps']} steps, {results['scale']} scale (* mean of 2 seeds; below chance + 20 points: "
                 f"'(chance)'){status}", fontsize=10)
    return save(fig, path, dpi=110)


def plot_staged(results: dict, path: str) -> str:
    """The staged protocol: validation mean IoU per epoch (front-end, then the two continuations from its
    checkpoint), and test mean IoU per seed with lines pairing the seeds."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    arms = {a["name"]: a for a in results["arms"]}
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8), gridspec_kw={"width_ratios": [1.4, 1]})
    colours = {"front_end": "tab:blue", "context": "tab:orange", "front_end_longer": "tab:green"}
    for name, arm in arms.items():
        for k, run in enumerate(arm["runs"]):
            front = arms["front_end"]["runs"][k]["curve"]["epoch"] if name != "front_end" else [0]
            offset = front[-1] if name != "front_end" else 0
            left.plot([e + offset for e in run["curve"]["epoch"]], run["curve"]["val_miou"], ".-", color=colours.get(name),
                      alpha=0.8, markersize=3, label=name if k == 0 else None)
    left.set_xlabel("epoch")
    left.set_ylabel("validation mean IoU")
    left.set_title("front-end, then from its checkpoint: + context (frozen front-end) vs front-end alone")
    left.legend(fontsize=8)
    labels = [n for n in ("front_end", "context", "front_end_longer") if n in arms]
    seeds = sorted({r["seed"] for a in arms.values() for r in a["runs"]})
    for seed in seeds:
        values = [next((r["test_miou"] for r in arms[n]["runs"] if r["seed"] == seed), None) for n in labels]
        right.plot(range(len(labels)), [np.nan if v is None else v for v in values], "o-", color="grey", alpha=0.6)
    starts = [r.get("start_miou") for r in arms.get("context", {}).get("runs", [])]
    if any(v is not None for v in starts):
        right.scatter([labels.index("context")] * len(starts), starts, marker="x", color="tab:red",
                      label="+ context before its training")
    chance = results.get("chance") or 0.0
    right.axhline(chance, color="grey", linestyle=":", label="chance (most frequent class)")
    right.axhline(chance + 0.2, color="grey", linestyle="--", label="chance + 20 points (guard)")
    right.set_xticks(range(len(labels)))
    right.set_xticklabels(labels)
    right.set_ylim(0.0, 1.0)
    right.set_ylabel("test mean IoU (lines: the same seed)")
    right.legend(fontsize=7, loc="upper left")
    budget = results["protocol"]["budget"]
    status = "" if results.get("complete") else ", INCOMPLETE"
    fig.suptitle(f"{results['title']}\n{results['dataset']} {'x'.join(map(str, budget['image_size']))}, front-end "
                 f"{budget['steps']} steps + {budget['extra_steps']} steps, {results['scale']} scale{status}",
                 fontsize=10)
    return save(fig, path, dpi=110)


def plot_cost(results: dict, path: str) -> str:
    """Test accuracy (mean over seeds, bar: min-max) against parameters and against CPU seconds per run."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for i, arm in enumerate(a for a in results["arms"] if a["runs"]):
        runs = [r for r in arm["runs"] if r.get("test_accuracy") is not None]
        if not runs:
            continue
        acc = 100 * np.array([r["test_accuracy"] for r in runs])
        colour = plt.get_cmap("tab10")(i % 10)
        for ax, x in ((axes[0], runs[0]["params"]), (axes[1], np.mean([r.get("cpu_seconds", np.nan) for r in runs]))):
            ax.errorbar(x, acc.mean(), yerr=[[acc.mean() - acc.min()], [acc.max() - acc.mean()]], capsize=4,
                        fmt="s" if "dense" in arm["model"] else "o", color=colour,
                        label=f"{arm['name']} ({len(runs)} seeds)")
    budget = results["protocol"]["budget"]
    for ax, xlabel in ((axes[0], "parameters (log scale)"), (axes[1], "CPU seconds per run (log scale; all threads)")):
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("test accuracy % (mean; bar: min-max over seeds)")
        ax.axhline(100 * (results.get("chance") or 0), color="grey", linestyle=":", label="chance")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{results['title']}: accuracy against size and cost\n{results['dataset']} "
                 f"{'x'.join(map(str, budget['image_size'] or ['native']))}, {budget['steps']} steps, {results['cpu']}",
                 fontsize=9)
    return save(fig, path, dpi=100)
