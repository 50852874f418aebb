"""The four search strategies, as KerasTuner tuners that print one progress line per trial.

- ``grid``: every cell of the space (the study's 36), in order; ``max_trials`` can cap it. Its
  oracle saves its enumeration state, so a killed grid search resumes (KerasTuner's does not).
- ``random``: ``max_trials`` random cells.
- ``bayesian``: Gaussian-process Bayesian optimisation over ``max_trials`` trials.
- ``hyperband``: successive halving over epochs budgets up to ``max_epochs`` (Li et al., 2018).

Every trial trains with ``keras.callbacks.BackupAndRestore`` in ``trial_*/backup``: when a search
is killed mid-trial and resumed, KerasTuner retries the interrupted trial and it continues from its
last finished epoch instead of epoch 0.

The tuners declare the space from ``ResNetHyperModel.declare_hyperparameters`` instead of
KerasTuner's default of building a throw-away model at start-up.
"""
from __future__ import annotations

import json
import math
import os
import time

import keras
import keras_tuner
from keras_tuner.src.tuners import gridsearch

from keras_resnets.checks import positive
from keras_resnets.tuning.report import EPOCHS_FILE

TUNERS = ("grid", "random", "bayesian", "hyperband")
BACKUP_DIR = "backup"  # per trial: BackupAndRestore state while the trial runs
REPORTED_METRICS = ("val_accuracy", "val_loss", "accuracy", "loss")  # classification's; see make_objective
DEFAULT_MAX_TRIALS = 10


def make_objective(name: str | None = None, direction: str | None = None,
                   task=None) -> keras_tuner.Objective:
    """The search objective: a metric the task's models report, and whether to maximise it.

    Args:
        name: one of the task's objectives (``keras_resnets.tasks.Task.objectives``: classification
            ``val_accuracy``, ``val_loss``, ...; segmentation ``val_mean_iou``, ``val_loss``,
            ``val_pixel_accuracy``, ...); default the task's monitored metric.
        direction: ``"max"`` or ``"min"``; default ``min`` for losses, ``max`` otherwise.
        task: the ``keras_resnets.tasks.Task`` or its name (default classification).

    Raises:
        ValueError: a metric the models do not report, or an unknown direction.
    """
    from keras_resnets.tasks import TASKS, get_task

    task = get_task(task or TASKS[0])
    allowed = task.objectives
    name = name or allowed[0]
    if name not in allowed:
        raise ValueError(f"objective {name!r} is not reported by {task.name} models; allowed: {', '.join(allowed)}")
    if direction is None:
        direction = "min" if name.endswith("loss") else "max"
    if direction not in ("max", "min"):
        raise ValueError(f"unknown objective direction {direction!r}; allowed: max, min")
    return keras_tuner.Objective(name, direction)


class _PerTrialProgress:
    """Tuner mixin: declare the space without building a model, back each trial up every epoch
    (``trial_*/backup``) so an interrupted trial resumes where it stopped, record each trial's epochs
    trained (``trial_*/epochs.json``; KerasTuner keeps only the best epoch's metrics), print one line
    per trial."""

    def __init__(self, *args, total_trials: int | None = None, **kwargs):
        self._total_trials = total_trials
        self._trial_started = {}
        self._resumed = {}
        super().__init__(*args, **kwargs)

    def _populate_initial_space(self):
        hp = self.oracle.get_space()
        self.hypermodel.declare_hyperparameters(hp)
        self.oracle.update_space(hp)

    def run_trial(self, trial, *args, **kwargs):
        trial_dir = self.get_trial_dir(trial.trial_id)
        # Two copies: a kill while the backup is written leaves the previous one to resume from.
        backup = keras.callbacks.BackupAndRestore(os.path.join(trial_dir, BACKUP_DIR), double_checkpoint=True)
        kwargs["callbacks"] = [*kwargs.get("callbacks", ()), backup]
        histories = super().run_trial(trial, *args, **kwargs)
        # A Hyperband continuation starts at its parent's last epoch; a resumed trial at its backup's.
        first = int(trial.hyperparameters.values.get("tuner/initial_epoch", 0))
        ran = [history.epoch for history in histories if history.epoch]
        record = {"epochs": sum(max(epochs) + 1 - first for epochs in ran)}
        resumed_at = min((min(epochs) for epochs in ran), default=first)
        if resumed_at > first:
            record["resumed_at_epoch"] = resumed_at
            self._resumed[trial.trial_id] = resumed_at
        with open(os.path.join(trial_dir, EPOCHS_FILE), "w") as f:
            json.dump(record, f)
        return histories

    def on_trial_begin(self, trial):
        self._trial_started[trial.trial_id] = time.perf_counter()
        super().on_trial_begin(trial)

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        finished = self.oracle.get_trial(trial.trial_id)
        seconds = time.perf_counter() - self._trial_started.pop(trial.trial_id, time.perf_counter())
        values = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                           for k, v in finished.hyperparameters.values.items()
                           if not k.startswith("tuner/") or k == "tuner/epochs")
        of = f"/{self._total_trials}" if self._total_trials else ""
        objective = self.oracle.objective.name
        if finished.score is None or (isinstance(finished.score, float) and math.isnan(finished.score)):
            result = f"{str(finished.status).lower()}"
        else:
            best = self.oracle.get_best_trials(1)
            best_text = f"; best {best[0].score:.4f}" if best and best[0].score is not None else ""
            result = f"{objective} {finished.score:.4f}{best_text}"
        resumed = self._resumed.pop(trial.trial_id, None)
        resumed_text = f", resumed at epoch {resumed + 1}" if resumed is not None else ""
        print(f"trial {finished.trial_id}{of} [{self.tuner_id}] {values}: {result} ({seconds:.0f} s{resumed_text})",
              flush=True)


class ResumableGridSearchOracle(keras_tuner.oracles.GridSearchOracle):
    """``GridSearchOracle`` whose enumeration state survives a reload.

    KerasTuner 1.4 keeps the grid's order of visited cells and its queue of cells to extend in
    memory only, so a grid search reloaded after a kill fails with a ``KeyError`` on its first
    finished trial. This oracle saves both with the rest of its state.
    """

    def get_state(self):
        state = super().get_state()
        order, index = [], self._ordered_ids._next_index[None]
        while index is not None:
            order.append(self._ordered_ids._memory[index])
            index = self._ordered_ids._next_index[index]
        state["grid_order"] = order
        state["grid_populate_next"] = list(self._populate_next)
        return state

    def set_state(self, state):
        super().set_state(state)
        self._ordered_ids = gridsearch.LinkedList()
        for trial_id in state.get("grid_order", []):
            self._ordered_ids.insert(trial_id)
        self._populate_next = list(state.get("grid_populate_next", []))


class GridTuner(_PerTrialProgress, keras_tuner.Tuner):
    """Grid search (``ResumableGridSearchOracle``) with per-trial progress lines.

    Args:
        hypermodel: the ``ResNetHyperModel``.
        objective: the search objective.
        max_trials: cells to run at most.
        seed: seed of the oracle.
        max_consecutive_failed_trials: failed trials in a row that end the search.
        **kwargs: ``keras_tuner.Tuner`` arguments (directory, project_name, executions_per_trial...)
            and ``total_trials`` for the progress lines.
    """

    def __init__(self, hypermodel, *, objective, max_trials, seed, max_consecutive_failed_trials, **kwargs):
        oracle = ResumableGridSearchOracle(objective=objective, max_trials=max_trials, seed=seed,
                                           max_consecutive_failed_trials=max_consecutive_failed_trials)
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)


class RandomTuner(_PerTrialProgress, keras_tuner.RandomSearch):
    """``keras_tuner.RandomSearch`` with per-trial progress lines."""


class BayesianTuner(_PerTrialProgress, keras_tuner.BayesianOptimization):
    """``keras_tuner.BayesianOptimization`` with per-trial progress lines."""


class HyperbandTuner(_PerTrialProgress, keras_tuner.Hyperband):
    """``keras_tuner.Hyperband`` with per-trial progress lines."""


def hyperband_trials(max_epochs: int, factor: int = 3) -> int:
    """Trials (rungs included) one Hyperband iteration runs, as KerasTuner's oracle schedules them.

    Args:
        max_epochs: the largest budget of a trial.
        factor: reduction factor between rungs.
    """
    oracle = keras_tuner.oracles.HyperbandOracle(objective="val_accuracy", max_epochs=max_epochs, factor=factor)
    brackets = oracle._get_num_brackets()
    return sum(oracle._get_size(bracket, rung) for bracket in range(brackets) for rung in range(bracket + 1))


def validate_settings(name: str, space, *, max_epochs: int, max_trials: int | None, factor: int,
                      executions_per_trial: int) -> None:
    """Check a tuner's name and counts against a space (``build_tuner``'s arguments).

    Raises:
        ValueError: unknown tuner, a grid over a continuous space, or counts that are not positive
            integers (Hyperband's ``factor``: >= 2).
    """
    if name not in TUNERS:
        raise ValueError(f"unknown tuner {name!r}; allowed: {', '.join(TUNERS)}")
    counts = (("max_epochs", max_epochs), ("executions_per_trial", executions_per_trial))
    for label, value in counts + (("max_trials", max_trials),):
        positive(label, value, optional=label == "max_trials")
    if name == "hyperband" and (isinstance(factor, bool) or not isinstance(factor, int) or factor < 2):
        raise ValueError(f"factor must be an integer >= 2; got {factor!r}")
    if name == "grid" and space.grid_size is None:
        raise ValueError("the grid tuner needs a finite space; lr_ratio='continuous' needs tuner random, "
                         "bayesian or hyperband")


def build_tuner(name: str, hypermodel, *, objective: keras_tuner.Objective, directory: str,
                project_name: str, max_epochs: int, max_trials: int | None = None, factor: int = 3,
                executions_per_trial: int = 1, seed: int = 0):
    """Create (or, when ``directory/project_name`` holds a search, reload) a tuner.

    Args:
        name: one of ``TUNERS``.
        hypermodel: the ``ResNetHyperModel``.
        objective: from ``make_objective``.
        directory: parent folder of the search's state.
        project_name: folder of the search's state under ``directory``.
        max_epochs: epochs per trial (Hyperband: the largest budget).
        max_trials: trials to run: default the whole grid for ``grid``, ``DEFAULT_MAX_TRIALS`` for
            ``random`` and ``bayesian``; ignored by ``hyperband`` (its brackets fix the count).
        factor: Hyperband's reduction factor.
        executions_per_trial: trainings per trial, averaged (for noisy objectives).
        seed: seed of the tuner's sampling.

    Raises:
        ValueError: unknown tuner, a grid over a continuous space, or bad counts.
    """
    validate_settings(name, hypermodel.space, max_epochs=max_epochs, max_trials=max_trials, factor=factor,
                      executions_per_trial=executions_per_trial)
    grid_size = hypermodel.space.grid_size
    common = dict(objective=objective, executions_per_trial=executions_per_trial, directory=directory,
                  project_name=project_name, seed=seed)
    # A diverging cell (e.g. sigmoid at a high lr) fails its trial; it must not end the search.
    failures = max(3, grid_size or DEFAULT_MAX_TRIALS)
    if name == "grid":
        trials = min(max_trials or grid_size, grid_size)
        return GridTuner(hypermodel, max_trials=trials, total_trials=trials, max_consecutive_failed_trials=failures,
                         **common)
    if name == "hyperband":
        return HyperbandTuner(hypermodel, max_epochs=max_epochs, factor=factor, hyperband_iterations=1,
                              total_trials=hyperband_trials(max_epochs, factor),
                              max_consecutive_failed_trials=failures, **common)
    trials = max_trials or DEFAULT_MAX_TRIALS
    tuner_class = RandomTuner if name == "random" else BayesianTuner
    return tuner_class(hypermodel, max_trials=trials, total_trials=trials, max_consecutive_failed_trials=failures,
                       **common)
