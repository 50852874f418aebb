"""``tune``: the Python API of ``keras-resnets tune``.

A search lives in ``runs/<run-name>/tune/``: ``search.json`` (its settings), KerasTuner's state
(``oracle.json``, ``<tuner id>.json``, one ``trial_*/`` per trial with its values, metrics and best
checkpoint) and the rendered results (``keras_resnets.tuning.report``). KerasTuner saves each trial
when it ends, so a killed search resumes (``resume=True``) without re-running finished trials; the
trial that was running starts over.

Distributed search (KerasTuner's chief/worker mode): run the same command in several processes
sharing the run directory, with ``KERASTUNER_ORACLE_IP``/``KERASTUNER_ORACLE_PORT`` set in all and
``KERASTUNER_TUNER_ID=chief`` in one (it hands out trials and renders the report when the search
ends) and ``tuner0``, ``tuner1``, ... in the workers (they train). See docs/tuning.md.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from keras_resnets.checks import positive
from keras_resnets.runs import DataOptions, RunOptions, check_resumable, write_json
from keras_resnets.training.listen import warn_if_public
from keras_resnets.tuning.report import SEARCH_FILE, render_report
from keras_resnets.tuning.space import SearchSpace

PROJECT_NAME = "tune"
# Settings a resumed search must share with the search it continues.
RESUME_KEYS = ("model", "dataset", "space", "tuner", "objective", "direction", "max_epochs", "max_trials",
                "factor", "executions_per_trial", "recipe", "model_kwargs", "image_size", "channels",
                "validation_split", "seed", "dataset_kwargs")


@dataclass
class SearchResult:
    """What ``tune`` returns.

    Attributes:
        tune_dir: the search's directory (``runs/<name>/tune``).
        best: the best trial (``trial_id``, ``score``, ``values``, ``epochs``) or ``None``.
        paths: rendered artifact name -> path (``results.md``, ``heatmap.png``, ``best_config.json``...);
            empty for a distributed worker, which leaves the report to the chief.
        trials: every trial of the search (see ``keras_resnets.tuning.report.read_trials``).
    """

    tune_dir: str
    best: dict | None
    paths: dict
    trials: list


def distributed_role() -> str | None:
    """``"chief"``, ``"worker"``, or ``None`` outside KerasTuner's distributed mode.

    Raises:
        ValueError: ``KERASTUNER_ORACLE_IP`` is set without the port or the tuner id.
    """
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return None
    missing = [v for v in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID") if not os.environ.get(v)]
    if missing:
        raise ValueError(f"distributed search: KERASTUNER_ORACLE_IP is set but {', '.join(missing)} is not "
                         f"(KERASTUNER_TUNER_ID: 'chief' for the chief, 'tuner0', 'tuner1', ... for workers)")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def _check_model_values(model: str, space: SearchSpace, datasets, model_kwargs: dict,
                        classifier_activation) -> None:
    """Build the model with the fixed keywords, then once per value of each model keyword the space
    varies (before any trial): a misspelled keyword ends the call with one line, not one traceback per trial."""
    import keras

    from keras_resnets.models import create_model

    info = datasets.info
    try:
        create_model(model, input_shape=info.image_shape, classes=info.num_classes,
                     classifier_activation=classifier_activation, **model_kwargs)
    except (ValueError, TypeError) as err:
        raise ValueError(f"model_kwargs {model_kwargs} do not build {model!r}: {err}") from None
    finally:
        keras.backend.clear_session()
    for key in ("depth", "unit", "shortcut"):
        for value in space.values.get(key, ()):
            try:
                create_model(model, input_shape=info.image_shape, classes=info.num_classes,
                             classifier_activation=classifier_activation, **{**model_kwargs, key: value})
            except ValueError as err:
                raise ValueError(f"search space value {value!r} of {key!r} does not build {model!r}: {err}") from None
            finally:
                keras.backend.clear_session()


def tune(
    model: str = "cifar_resnet20",
    dataset: str = "digits",
    *,
    space=None,
    space_overrides: dict | None = None,
    tuner: str = "grid",
    objective: str | None = None,
    direction: str | None = None,
    max_epochs: int = 10,
    max_trials: int | None = None,
    factor: int = 3,
    executions_per_trial: int = 1,
    early_stopping_patience: int | None = None,
    recipe: str | None = None,
    model_kwargs: dict | None = None,
    classifier_activation: str | None = "auto",
    data_dir: str | None = None,
    image_size=None,
    channels: int | None = None,
    validation_split: float = 0.1,
    download: bool = False,
    dataset_kwargs: dict | None = None,
    datasets=None,
    runs_dir: str = "runs",
    run_name: str | None = None,
    resume: bool = False,
    seed: int = 0,
    xla="auto",
    verbose: int = 0,
) -> SearchResult:
    """Search hyper-parameters of a registered model on a dataset; write results to ``runs/<name>/tune``.

    Every argument is checked before the first trial (and before data loads where possible).

    Args:
        model: registry name, e.g. ``cifar_resnet20``, ``dilated_resnet18_seg``.
        dataset: a registered dataset (``digits``, ``folder``, ``shapes``, ...) or a TFDS name; its
            task (classification or segmentation) decides the loss, metrics and objectives.
        space: a space name (``keras_resnets.tuning.SPACES``: ``study`` is the CIFAR-10 study's
            3 x 4 x 3 grid) or a mapping ``key -> values``; default the task's (``Task.default_space``:
            ``study`` for classification, ``segmentation_lr`` for segmentation).
        space_overrides: ``key -> values`` replacing or adding keys of ``space``.
        tuner: ``grid``, ``random``, ``bayesian`` or ``hyperband``.
        objective: one of the task's objectives (classification: ``val_accuracy``, ``val_loss``,
            ``accuracy``, ``loss``; segmentation: ``val_mean_iou``, ``val_loss``,
            ``val_pixel_accuracy``, ``mean_iou``, ``loss``); default ``val_accuracy`` /
            ``val_mean_iou``.
        direction: ``max`` or ``min``; default ``min`` for losses, ``max`` otherwise.
        max_epochs: epochs of a trial (Hyperband: the largest budget of a trial).
        max_trials: trials of ``random``/``bayesian`` (default 10); caps ``grid``; at least 1.
        factor: Hyperband's reduction factor.
        executions_per_trial: trainings per trial, averaged (noisy objectives).
        early_stopping_patience: stop a trial after this many epochs without improvement.
        recipe: the training recipe giving every value the space does not set (default: the task's).
        model_kwargs: fixed ``create_model`` keywords (``{"depth": 8}``); checked by building the
            model once before the first trial.
        classifier_activation: output activation; ``None`` trains on logits; ``"auto"``: the task's.
        data_dir, image_size, channels, validation_split, download: as for ``load_dataset``.
        dataset_kwargs: options of the dataset's loader (see ``keras_resnets.train``).
        datasets: an already loaded ``Datasets`` to reuse (then ``dataset`` only names it).
        runs_dir: parent folder of run directories.
        run_name: the run directory (default ``tune-<model>-<dataset>-<time>``; required in
            distributed mode, where every process must name the same one).
        resume: continue the search in ``runs_dir/run_name/tune``; finished trials are not re-run.
        seed: seed of the data order, the weights and the tuner's sampling.
        xla: ``auto`` (on with accelerators, off on CPU, where it costs more than it saves), ``on``, ``off``.
        verbose: Keras ``fit`` verbosity inside trials (0: only the per-trial progress lines).

    Returns:
        ``SearchResult``.

    Raises:
        ValueError: a bad argument, naming the value and the allowed ones; an existing search
            without ``resume``; a resume with different settings.
        keras_resnets.data.DatasetUnavailableError: the dataset's files are missing.
    """
    plan = plan_search(
        model, DataOptions(dataset, dataset_kwargs, data_dir, image_size, channels, validation_split, download),
        RunOptions(runs_dir, run_name, resume, seed, xla), SearchSettings(
            tuner, space, dict(space_overrides or {}), objective, direction, max_epochs, max_trials, factor,
            executions_per_trial, early_stopping_patience),
        recipe=recipe, model_kwargs=model_kwargs, classifier_activation=classifier_activation)
    return run_search(plan, datasets, verbose)


def run_search(plan: "SearchPlan", datasets=None, verbose: int = 0) -> SearchResult:
    """Run a planned search: check or start its directory, load the data, check the model, search, report.

    Args:
        plan: a ``SearchPlan`` (``plan_search``).
        datasets, verbose: as for ``tune``.
    """
    from keras_resnets.tuning.hypermodel import ResNetHyperModel
    from keras_resnets.tuning.tuners import build_tuner

    record, search_file = plan.to_dict(), os.path.join(plan.tune_dir, SEARCH_FILE)
    if plan.role != "worker":
        _check_search_file(search_file, record, plan.tune_dir, plan.run.resume, plan.run_name)
    if plan.role != "chief" and datasets is None:
        datasets = plan.data.load(batch_size=plan.base_recipe.batch_size, augment=plan.base_recipe.augment,
                                  seed=plan.run.seed)
    if datasets is not None:
        _check_model_values(plan.model, plan.space, datasets, plan.model_kwargs, plan.classifier_activation)
    how = plan.settings
    hypermodel = ResNetHyperModel(
        plan.model, plan.space, datasets, epochs=how.max_epochs, recipe=plan.base_recipe,
        model_kwargs=plan.model_kwargs, classifier_activation=plan.classifier_activation, objective=plan.objective,
        early_stopping_patience=how.early_stopping_patience, jit_compile=plan.jit_compile,
        seed=plan.run.seed, task=plan.task,
    )
    os.makedirs(plan.tune_dir, exist_ok=True)
    if plan.role != "worker" and not os.path.exists(search_file):
        write_json(search_file, record)
    search_tuner = build_tuner(
        how.tuner, hypermodel, objective=plan.objective,
        directory=os.path.join(plan.run.runs_dir, plan.run_name), project_name=PROJECT_NAME,
        max_epochs=how.max_epochs, max_trials=how.max_trials,
        factor=how.factor, executions_per_trial=how.executions_per_trial,
        seed=plan.run.seed,
    )
    print(f"search: {plan.describe()} -> {plan.tune_dir}", flush=True)
    search_tuner.search(verbose=verbose)
    if plan.role == "worker":
        return SearchResult(tune_dir=plan.tune_dir, best=None, paths={}, trials=[])
    report = render_report(plan.tune_dir)
    return SearchResult(tune_dir=plan.tune_dir, best=report["best"], paths=report["paths"], trials=report["trials"])


@dataclass(frozen=True)
class SearchSettings:
    """How to search, as given to ``tune`` (unchecked): the tuner, the space and its overrides, the
    objective and its direction, the trial budget."""

    tuner: str = "grid"
    space: object = None
    space_overrides: dict = field(default_factory=dict)
    objective: str | None = None
    direction: str | None = None
    max_epochs: int = 10
    max_trials: int | None = None
    factor: int = 3
    executions_per_trial: int = 1
    early_stopping_patience: int | None = None


@dataclass(frozen=True)
class SearchPlan:
    """A search's checked choices, before any data loads: the model, the data and run options it
    shares with ``train``, the task, the space, the objective, the recipe every trial starts from,
    the output activation, the fixed model keywords, XLA, this process's role and the run name."""

    model: str
    data: DataOptions
    run: RunOptions
    settings: SearchSettings
    task: object
    space: SearchSpace
    objective: object
    recipe: str
    base_recipe: object
    classifier_activation: str | None
    model_kwargs: dict
    jit_compile: bool
    role: str | None
    run_name: str

    @property
    def tune_dir(self) -> str:
        from keras_resnets.runs import RunDir

        return RunDir(os.path.join(self.run.runs_dir, self.run_name)).tune

    def to_dict(self) -> dict:
        """``search.json``: the search's settings (the ones of ``RESUME_KEYS`` must match on resume)."""
        settings = self.settings
        return {
            "model": self.model, **self.data.config_values(), "space": self.space.to_dict(),
            "tuner": settings.tuner, "objective": self.objective.name, "direction": self.objective.direction,
            "max_epochs": settings.max_epochs, "max_trials": settings.max_trials, "factor": settings.factor,
            "executions_per_trial": settings.executions_per_trial,
            "early_stopping_patience": settings.early_stopping_patience, "recipe": self.recipe,
            "model_kwargs": self.model_kwargs, "classifier_activation": self.classifier_activation,
            "seed": self.run.seed, "xla": self.run.xla, "jit_compile": self.jit_compile, "task": self.task.name,
        }

    def describe(self) -> str:
        size = self.space.grid_size
        values = ", ".join(f"{k} {list(v)}" for k, v in self.space.values.items())
        return (f"{self.settings.tuner} over {values}{f' ({size} cells)' if size else ''}, "
                f"{self.settings.max_epochs} epochs per trial, "
                f"objective {self.objective.name} ({self.objective.direction})")


def plan_search(model: str, data: DataOptions, run: RunOptions, settings: SearchSettings, *, recipe=None,
                model_kwargs=None, classifier_activation="auto") -> SearchPlan:
    """Check every choice of :func:`tune` that needs no data (each error one line, naming the value).

    The task (from the dataset, checked against the model's family) gives the default space, the
    values its data allows, the objectives, the default recipe and the output activation.
    """
    from keras_resnets.data.registry import task_of
    from keras_resnets.training import get_recipe, resolve_jit_compile
    from keras_resnets.training.recipes import default_recipe
    from keras_resnets.tuning.tuners import make_objective, validate_settings

    task = task_of(model, data.dataset)
    search_space = SearchSpace.from_spec(task.default_space if settings.space is None else settings.space,
                                         settings.space_overrides)
    validate_settings(settings.tuner, search_space, max_epochs=settings.max_epochs,
                      max_trials=settings.max_trials, factor=settings.factor,
                      executions_per_trial=settings.executions_per_trial)
    search_objective = make_objective(settings.objective, settings.direction, task)
    recipe = recipe or default_recipe(model, task)
    base_recipe = get_recipe(recipe)
    if classifier_activation == "auto":
        classifier_activation = task.default_classifier_activation
    task.check_space(search_space.values)
    search_space.validate_model(model)
    model_kwargs = dict(model_kwargs or {})
    overlap = sorted(set(model_kwargs) & set(search_space.values))
    if overlap:
        raise ValueError(f"model keyword {overlap[0]!r} is both fixed (model_kwargs) and searched (space)")
    jit_compile = resolve_jit_compile(run.xla)
    positive("early_stopping_patience", settings.early_stopping_patience)
    role = _distributed_role_checked(run.run_name)
    return SearchPlan(model, data, run, settings, task, search_space, search_objective, recipe, base_recipe,
                      classifier_activation, model_kwargs, jit_compile, role, run.name(model, data.dataset, "tune-"))


def _distributed_role_checked(run_name) -> str | None:
    """This process's role in a distributed search (``None``: alone), its run name checked."""
    role = distributed_role()
    if role and not run_name:
        raise ValueError("distributed search: every process needs the same run_name (--run-name)")
    if role == "chief":
        warn_if_public(f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}",
                       "the KerasTuner oracle (gRPC)")
    return role


def _check_search_file(search_file: str, settings: dict, tune_dir: str, resume: bool, run_name: str) -> None:
    """An existing search needs ``resume`` with the same settings; ``resume`` needs an existing search."""
    if os.path.exists(search_file):
        if not resume:
            raise ValueError(f"a search already exists in {tune_dir!r}; pass resume=True (--resume) to continue "
                             f"it or choose another run name (--run-name)")
        with open(search_file) as f:
            stored = json.load(f)
        check_resumable(tune_dir, stored, {key: settings.get(key) for key in RESUME_KEYS})
    elif resume:
        raise ValueError(f"cannot resume: {search_file!r} does not exist (no search named {run_name!r})")
