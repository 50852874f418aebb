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

The results file is rewritten after every run, so a killed experiment continues where it stopped
when run again (finished arm x seed pairs are kept; settings must match). Verdicts are recomputed
from the pre-registered rules each time.
"""
from __future__ import annotations

import json
import math
import os
import platform
import time

import numpy as np

from keras_resnets.experiments.probes import PLOTS, get_probe
from keras_resnets.experiments.spec import Experiment, check_scale, get_experiment
from keras_resnets.experiments.verdicts import judge, summarise

RESULTS_DIR = os.path.join("notebooks", "results")
FIGURES_DIR = os.path.join("notebooks", "figures")


def results_path(experiment: Experiment, scale: str, dataset: str | None, results_dir: str) -> str:
    """``<results_dir>/<stem>.json`` at the laptop scale on its own dataset, else a suffixed name."""
    suffix = "" if scale == "laptop" else f"-{scale}"
    if dataset and dataset != experiment.budget_at(scale).dataset:
        suffix += f"-{dataset}"
    return os.path.join(results_dir, f"{experiment.stem}{suffix}.json")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def _protocol(experiment: Experiment, scale: str, budget) -> dict:
    protocol = {"scale": scale, "budget": budget.to_dict(),
                "arms": [{"name": a.label, "model": a.model, "kwargs": a.kwargs} for a in experiment.arms_at(scale)]}
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


def train_one(arm, budget, seed: int, data=None, probe=None, probe_at=()) -> dict:
    """Train ``arm`` for ``budget.steps`` steps with ``seed``; return the run's record (see the module doc).

    ``probe`` (a function of ``keras_resnets.experiments.probes``) is taken at the steps ``probe_at``
    and stored under ``record["probes"]`` when it applies to the network."""
    import keras

    from keras_resnets.data import load_dataset
    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model, fit_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    if data is None:
        data = load_dataset(budget.dataset, image_size=budget.image_size, batch_size=budget.batch_size,
                            augment=budget.augment, seed=seed)
    keras.utils.set_random_seed(seed)
    model = create_model(arm.model, input_shape=data.info.image_shape, classes=data.info.num_classes, **arm.kwargs)
    recipe = with_overrides(get_recipe("he2016_cifar"), lr=budget.lr, weight_decay=budget.weight_decay,
                            schedule=budget.schedule, warmup_steps=budget.warmup_steps,
                            batch_size=budget.batch_size, augment=budget.augment)
    compile_model(model, recipe, total_steps=budget.steps,
                  extra_metrics=[keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")])
    curves = _batch_curves(budget.curve_every)
    callbacks = [curves, keras.callbacks.TerminateOnNaN()]
    probes = _probe_callback(probe, set(probe_at), data) if probe else None
    epochs = -(-budget.steps // data.steps_per_epoch)
    start, cpu_start = time.time(), time.process_time()
    fit_model(model, data.train(epochs).take(budget.steps), 1, callbacks=callbacks + ([probes] if probes else []),
              verbose=0)
    seconds, cpu_seconds = time.time() - start, time.process_time() - cpu_start
    error = 1.0 - curves.per_step("accuracy")
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


def _new_results(experiment: Experiment, scale: str, budget, protocol: dict) -> dict:
    import keras

    return {
        "experiment": experiment.name, "stem": experiment.stem, "title": experiment.title,
        "paper": experiment.paper, "expectation": experiment.expectation, "metric_note": experiment.metric_note,
        "scale": scale, "dataset": budget.dataset, "protocol": protocol, "chance": None,
        "arms": [{"name": a.label, "model": a.model, "kwargs": a.kwargs, "paper": a.paper, "runs": []}
                 for a in experiment.arms_at(scale)],
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
        for key in ("test_accuracy", "train_error", "train_crossentropy", "test_crossentropy", "params"):
            arm[key] = [r.get(key) for r in arm["runs"]]
    if results["chance"] is not None:
        arms = {arm["name"]: arm for arm in results["arms"]}
        results["verdicts"] = [judge(rule, arms, results["chance"]) for rule in experiment.rules]
        results["summary"] = summarise(results["verdicts"])
        if not results.get("complete"):
            results["summary"] = f"incomplete run; so far: {results['summary']}"
    return results


def _write(results: dict, path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)


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
        seeds: a count (seeds 0..n-1) or a list of seeds; default the scale's (3; smoke: 1).
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
    seed_list = _seed_list(seeds, budget.seeds)
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
    data_cache = {}
    pending = [(arm, seed) for arm in experiment.arms_at(scale) if arm.label in chosen for seed in seed_list]
    if experiment.order == "seeds":
        pending.sort(key=lambda pair: seed_list.index(pair[1]))  # stable: arms stay in declared order
    for arm, seed in pending:
        if seed in {r["seed"] for r in by_label[arm.label]["runs"]}:
            continue
        if seed not in data_cache:
            from keras_resnets.data import load_dataset

            data_cache.clear()
            data_cache[seed] = load_dataset(budget.dataset, image_size=budget.image_size,
                                            batch_size=budget.batch_size, augment=budget.augment, seed=seed)
        data = data_cache[seed]
        record = train_one(arm, budget, seed, data, probe=get_probe(experiment.probe) if experiment.probe else None,
                           probe_at=probe_steps(experiment, budget))
        results["chance"] = 1.0 / data.info.num_classes
        by_label[arm.label]["runs"].append(record)
        results["wall_seconds"] = round(results["wall_seconds"] + record["seconds"], 1)
        results["complete"] = all(len(a["runs"]) >= len(seed_list) for a in results["arms"])
        refresh(results, experiment)
        _write(results, path)
        if figures_dir:
            plot_figures(results, experiment, figures_dir, os.path.basename(path)[:-5])
        if progress:
            acc = "diverged" if record["diverged"] else f"test acc {record['test_accuracy']:.3f}"
            progress(f"{experiment.name} [{scale}] {arm.label} seed {seed}: {acc}, train error "
                     f"{record['train_error']}, {record['seconds']:.0f} s")
    results["complete"] = all(len(a["runs"]) >= len(seed_list) for a in results["arms"])
    refresh(results, experiment)
    if results["chance"] is not None:
        _write(results, path)
    results["path"] = path
    return results


def plot_figures(results: dict, experiment: Experiment, figures_dir: str, stem: str) -> list:
    """The experiment's figures: ``<stem>.png`` (curves and test accuracy) and, with a probe that has a
    picture, ``<notebook number>_<picture>.png`` (a suffixed scale or dataset keeps its suffix)."""
    paths = [plot_results(results, os.path.join(figures_dir, f"{stem}.png"))]
    if experiment.probe in PLOTS and any(r.get("probes") for a in results["arms"] for r in a["runs"]):
        name, plot = PLOTS[experiment.probe]
        suffix = stem[len(experiment.stem):]
        paths.append(plot(results, os.path.join(figures_dir, f"{experiment.stem[:2]}_{name}{suffix}.png")))
    return paths


def plot_results(results: dict, path: str) -> str:
    """Training error (log axis, mean over seeds, min-max band) per arm, and test accuracy per seed."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

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
