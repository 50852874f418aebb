"""``train`` in steps: plan -> prepare data -> build model -> fit -> evaluate and write.

Each step takes the run's plan or ``RunConfig`` and does one thing; ``keras_resnets.training.train``
calls them in order. The run directory is created (atomically) only after the data loaded and the
model built, so a failed ``train`` leaves nothing behind (docs/guarantees.md).
"""
from __future__ import annotations

import math
import os
import sys
import time
from dataclasses import dataclass, field

import keras

from keras_resnets.runs import FREEZE_MODES, RunConfig, RunDir, RunError, RunWriteError, describe_differences
from keras_resnets.tasks import TASKS, Task, get_task
from keras_resnets.training import recipes as recipes_lib
from keras_resnets.training import schedules
from keras_resnets.training.artifacts import read_history
from keras_resnets.training.callbacks import (
    EpochCheckpoint,
    GuardedBackupAndRestore,
    HistoryWriter,
    LearningRateLogger,
    NonFiniteLossGuard,
    TrainingDivergedError,
    backed_up_epoch,
)

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
XLA_MODES = ("auto", "on", "off")
AUTO = "auto"  # classifier_activation: the task's default


@dataclass
class TrainPlan:
    """A ``train`` call's arguments, validated (no data loaded, nothing written yet)."""

    model: str
    dataset: str
    task: Task
    recipe: recipes_lib.Recipe
    model_kwargs: dict
    dataset_kwargs: dict
    classifier_activation: str | None
    data_options: dict
    runs_dir: str
    run_name: str
    resume: bool
    continue_epochs: int | None
    init_from: str | None
    freeze: str
    seed: int
    deterministic: bool
    precision: str
    jit_compile: bool
    extra: dict = field(default_factory=dict)
    given: frozenset = frozenset()  # the recipe fields (and "recipe") set by an argument, not by the recipe


def positive(name: str, value, kind=int):
    """``value`` as a positive ``kind``, ``None`` kept; ``ValueError`` naming ``name`` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)) \
            or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if kind is int else 'number'}; got {value!r}")
    return kind(value)


def validate_recipe(recipe: recipes_lib.Recipe) -> None:
    """Check a recipe's values (with the run's overrides applied)."""
    from keras_resnets.data import augment as augment_lib

    positive("epochs", recipe.epochs)
    positive("batch_size", recipe.batch_size)
    positive("lr", recipe.lr, float)
    if recipe.schedule not in schedules.SCHEDULES:
        raise ValueError(f"unknown schedule {recipe.schedule!r}; allowed: {', '.join(schedules.SCHEDULES)}")
    if recipe.schedule == "lr_ratio":
        schedules.parse_lr_ratio(recipe.lr_ratio)
    if recipe.weight_decay_mode not in recipes_lib.WEIGHT_DECAY_MODES:
        raise ValueError(f"unknown weight_decay_mode {recipe.weight_decay_mode!r}; "
                         f"allowed: {', '.join(recipes_lib.WEIGHT_DECAY_MODES)}")
    if recipe.weight_decay < 0 or recipe.warmup_steps < 0 or not 0 <= recipe.momentum < 1:
        raise ValueError(f"need weight_decay >= 0, warmup_steps >= 0, 0 <= momentum < 1; got "
                         f"{recipe.weight_decay}, {recipe.warmup_steps}, {recipe.momentum}")
    augment_lib.validate_policy(recipe.augment)
    if recipe.optimizer not in recipes_lib.OPTIMIZERS:
        raise ValueError(f"unknown optimizer {recipe.optimizer!r}; allowed: {', '.join(recipes_lib.OPTIMIZERS)}")


def resolve_jit_compile(xla="auto") -> bool:
    """Whether to XLA-compile the train step.

    ``auto``: on with the JAX backend and wherever TensorFlow sees a GPU or TPU; off with the torch
    backend and on a CPU-only TensorFlow, where XLA measured several times slower for CIFAR ResNets (docs/training.md).

    Args:
        xla: ``"auto"``, ``"on"``, ``"off"`` or a bool.
    """
    if isinstance(xla, bool):
        return xla
    if xla not in XLA_MODES:
        raise ValueError(f"unknown xla mode {xla!r}; allowed: {', '.join(XLA_MODES)}")
    if xla != "auto":
        return xla == "on"
    if keras.backend.backend() == "jax":
        return True
    if keras.backend.backend() == "torch":  # eager (jit_compile would be torch.compile; not measured faster here)
        return False
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def resolve_verbose(verbose):
    """Keras verbosity: ``"auto"`` is the progress bar on a terminal, one line per epoch otherwise
    (a log file would get every step's bar fragment)."""
    if verbose == "auto":
        return "auto" if sys.stdout.isatty() else 2
    return verbose


def task_of(model: str, dataset: str) -> Task:
    """The task of ``dataset`` (registry), checked against the model's family.

    Raises:
        ValueError: unknown model, or a segmentation model on a classification dataset (or the reverse).
    """
    from keras_resnets.data.registry import get_dataset, list_datasets
    from keras_resnets.models import get_entry

    entry, task = get_entry(model), get_task(get_dataset(dataset).task)
    if not task.fits_model_family(entry.family):
        kind = next(name for name in TASKS if get_task(name).fits_model_family(entry.family))
        raise ValueError(f"model {model!r} is a {kind} model but dataset {dataset!r} is a {task.name} dataset; "
                         f"{kind} datasets: {', '.join(list_datasets(kind))}")
    return task


def _check_staging(init_from, freeze, resume, continue_epochs) -> None:
    if freeze not in FREEZE_MODES:
        raise ValueError(f"unknown freeze {freeze!r}; allowed: {', '.join(FREEZE_MODES)}")
    if freeze != "none" and not init_from:
        raise ValueError(f"freeze={freeze!r} needs init_from (--init-from RUN): the frozen layers are the ones loaded")
    if init_from is not None and RunDir(init_from).model_file("best") is None:
        raise ValueError(f"init_from {init_from!r} is not a run directory with best.keras or final.keras")
    positive("continue_epochs", continue_epochs)
    if continue_epochs is not None and not resume:
        raise ValueError("continue_epochs needs resume=True (--resume): it adds epochs to a finished run")


RECIPE_ARGUMENTS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "weight_decay_mode", "schedule",
                    "lr_ratio", "warmup_steps", "augment", "expand", "optimizer")


def plan_run(args: dict) -> TrainPlan:
    """Validate ``train``'s arguments (everything that needs no data) into a ``TrainPlan``.

    Raises:
        ValueError: the first bad argument, naming its value and the allowed ones.
    """
    from keras_resnets.runs import default_run_name

    task = task_of(args["model"], args["dataset"])
    overrides = {k: args[k] for k in RECIPE_ARGUMENTS}
    recipe = recipes_lib.with_overrides(recipes_lib.get_recipe(args["recipe"] or recipes_lib.default_recipe(args["model"], task)), **overrides)
    validate_recipe(recipe)
    if args["precision"] not in PRECISIONS:
        raise ValueError(f"unknown precision {args['precision']!r}; allowed: {', '.join(PRECISIONS)}")
    _check_staging(args["init_from"], args["freeze"], args["resume"], args["continue_epochs"])
    model_kwargs = dict(args["model_kwargs"] or {})
    if args["activation"] is not None:
        model_kwargs["activation"] = args["activation"]
    activation = args["classifier_activation"]
    data_options = {k: args[k] for k in ("data_dir", "image_size", "channels", "validation_split", "download")}
    return TrainPlan(
        model=args["model"], dataset=args["dataset"], task=task, recipe=recipe, model_kwargs=model_kwargs,
        dataset_kwargs=dict(args["dataset_kwargs"] or {}),
        classifier_activation=task.default_classifier_activation if activation == AUTO else activation,
        data_options=data_options, runs_dir=args["runs_dir"],
        run_name=args["run_name"] or default_run_name(args["model"], args["dataset"]), resume=args["resume"],
        continue_epochs=args["continue_epochs"], init_from=args["init_from"], freeze=args["freeze"],
        seed=args["seed"], deterministic=args["deterministic"], precision=args["precision"],
        jit_compile=resolve_jit_compile(args["xla"]),
        given=frozenset(k for k in (*RECIPE_ARGUMENTS, "recipe") if args[k] is not None),
    )


def describe_recipe(config: RunConfig, given=frozenset()) -> str:
    """One line: the effective recipe and where each value came from (``[set]``: an argument or flag).

    ``given``: the names set by an argument (``TrainPlan.given``); the other values are the recipe's.
    """
    def mark(name: str, text: str) -> str:
        return f"{text} [set]" if name in given else text

    lr = mark("lr", f"lr {config.lr:g}")
    if config.schedule == "lr_ratio":
        schedule = mark("lr_ratio", f"lr_ratio {config.lr_ratio}")
    else:
        schedule = mark("schedule", config.schedule)
    if config.warmup_steps:
        schedule += ", " + mark("warmup_steps", f"warm-up {config.warmup_steps} steps")
    optimizer = mark("optimizer", config.optimizer)
    if config.optimizer == "sgd":
        optimizer += " " + mark("momentum", f"momentum {config.momentum:g}") + (" nesterov" if config.nesterov else "")
    decay = mark("weight_decay", f"weight decay {config.weight_decay:g}")
    epochs = mark("epochs", f"{config.epochs} epoch{'' if config.epochs == 1 else 's'}")
    base = recipes_lib.RECIPES.get(config.recipe)
    if "epochs" not in given and base is not None and base.epochs is None and config.iterations:
        epochs += f" (the recipe's {config.iterations} iterations)"
    augment = mark("augment", f"augment {config.augment}") + (
        " " + mark("expand", f"expand x{config.expand}") if config.expand else "")
    if "recipe" in given:
        source = "set"
    elif recipes_lib.MODEL_RECIPES.get(config.model) == config.recipe:
        source = f"the {config.model} default"
    else:
        source = f"the {config.task} default"
    return (f"recipe {config.recipe} ({source}): {optimizer}, {lr}, schedule {schedule}, {decay}, "
            f"batch {mark('batch_size', str(config.batch_size))}, {epochs}, {augment}"
            + ("  ([set]: given as an argument; the rest from the recipe)" if given - {"recipe"} else ""))


def prepare_data(plan: TrainPlan, datasets=None):
    """Seed everything and load the dataset through the registry (or reuse ``datasets``)."""
    from keras_resnets.data import registry
    from keras_resnets.training import distributed

    keras.utils.set_random_seed(plan.seed)
    if plan.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = datasets or registry.load(
        plan.dataset, plan.dataset_kwargs, batch_size=plan.recipe.batch_size, augment=plan.recipe.augment,
        expand=plan.recipe.expand, seed=plan.seed, **plan.data_options)
    return distributed.shard_ready(data)  # unchanged unless a keras.distribution spans several devices


def build_run_config(plan: TrainPlan, data) -> RunConfig:
    """The run's ``RunConfig``: the plan plus what the data tells (shapes, classes, normalisation, steps)."""
    from keras_resnets.training.loop import package_version

    steps = data.steps_per_epoch
    recipe = plan.recipe
    epochs = recipe.epochs or math.ceil(recipe.iterations / steps)
    recipe_values = {k: v for k, v in recipe.to_dict().items() if k in RunConfig.keys()}
    image_size = plan.data_options["image_size"]
    return RunConfig(
        **data.info.to_config(), task=plan.task.name, model=plan.model, model_kwargs=plan.model_kwargs,
        dataset_kwargs=plan.dataset_kwargs, data_dir=plan.data_options["data_dir"],
        image_size=list(image_size) if image_size else None, channels=plan.data_options["channels"],
        validation_split=plan.data_options["validation_split"], classifier_activation=plan.classifier_activation,
        recipe=recipe.name, **{**recipe_values, "epochs": epochs}, init_from=plan.init_from, freeze=plan.freeze,
        steps_per_epoch=steps, total_steps=epochs * steps, seed=plan.seed, deterministic=plan.deterministic,
        precision=plan.precision, jit_compile=plan.jit_compile, backend=keras.backend.backend(),
        keras_resnets_version=package_version(),
    )


def recipe_of(config: RunConfig) -> recipes_lib.Recipe:
    """The recipe a ``RunConfig`` trains with (its name and fields)."""
    fields = {k: getattr(config, k) for k in recipes_lib.Recipe.__dataclass_fields__ if k in RunConfig.keys()}
    base = recipes_lib.RECIPES.get(config.recipe) or recipes_lib.Recipe(config.recipe or "custom", "")
    return recipes_lib.with_overrides(base, **fields)


def requested_values(plan: TrainPlan) -> dict:
    """The ``config.json`` values a plan fixes before any data loads (what resume compares first)."""
    recipe = {k: v for k, v in plan.recipe.to_dict().items() if k in RunConfig.keys() and v is not None}
    image_size = plan.data_options["image_size"]
    return {"model": plan.model, "model_kwargs": plan.model_kwargs, "dataset": plan.dataset, "task": plan.task.name,
            "dataset_kwargs": plan.dataset_kwargs, "classifier_activation": plan.classifier_activation,
            "recipe": plan.recipe.name, **recipe, "init_from": plan.init_from, "freeze": plan.freeze,
            "seed": plan.seed, "deterministic": plan.deterministic, "precision": plan.precision,
            "image_size": list(image_size) if image_size else None, "channels": plan.data_options["channels"],
            "validation_split": plan.data_options["validation_split"]}


def check_resume_request(run: RunDir, plan: TrainPlan) -> None:
    """Refuse early (before data loads) a resume whose settings differ from the run's, naming the keys.

    ``epochs`` may differ only through ``continue_epochs``.

    Raises:
        RunError: the settings differ.
    """
    stored = run.read_config().to_dict()
    requested = requested_values(plan)
    if plan.continue_epochs or (requested.get("epochs") is None):
        requested.pop("epochs", None)
    differences = [(k, stored[k], v) for k, v in requested.items() if stored[k] != json_value(v)]
    if differences:
        raise RunError(f"cannot resume {run.path!r}: its config differs in {describe_differences(differences)}; "
                       f"resume with the same settings or start a new run (--run-name)")


def json_value(value):
    """``value`` as ``config.json`` stores it (tuples become lists)."""
    import json

    return json.loads(json.dumps(value, default=str))


def reconcile_resume(run: RunDir, config: RunConfig, continue_epochs: int | None) -> RunConfig:
    """The config a resumed run continues with: the stored one, which must equal this call's.

    ``continue_epochs`` adds epochs to the stored ones (the schedule is re-spanned over the new total).

    Raises:
        RunError: the configs differ; the message names the keys.
    """
    stored = run.read_config()
    if continue_epochs:
        config = config.replace(epochs=stored.epochs + continue_epochs,
                                total_steps=(stored.epochs + continue_epochs) * config.steps_per_epoch)
        stored = stored.replace(epochs=config.epochs, total_steps=config.total_steps)
    differences = stored.differences(config)
    if differences:
        raise RunError(f"cannot resume {run.path!r}: its config differs in {describe_differences(differences)}; "
                       f"resume with the same settings or start a new run (--run-name)")
    return config


def fit_run(net, data, run: RunDir, config: RunConfig, resume: bool, callbacks=(), verbose="auto"):
    """Fit with checkpoints, backups and the history; returns ``(guard, initial_epoch, seconds)``.

    Raises:
        RunWriteError: an artifact could not be written; the previous checkpoints are intact.
    """
    from keras_resnets.training.loop import fit_model

    task = get_task(config.task)
    initial_epoch = backed_up_epoch(run.backup) if resume else 0
    previous_best = max(read_history(run.history).get(task.monitor, []), default=-math.inf)
    guard = NonFiniteLossGuard(warn_explosion=True)
    # At an epoch's end: history, checkpoints, then the resume state, the commit point (callbacks.py).
    run_callbacks = [
        guard, LearningRateLogger(), HistoryWriter(run.history, keep_existing=resume),
        EpochCheckpoint(run.last_weights, run.best_model, guard, monitor=task.monitor, best=previous_best),
        GuardedBackupAndRestore(run.backup, guard),
        *_tensorboard(run),
        *callbacks,
    ]
    started = time.perf_counter()
    try:
        if initial_epoch < config.epochs:
            fit_model(net, data, config.epochs, initial_epoch=initial_epoch, callbacks=run_callbacks,
                      verbose=resolve_verbose(verbose))
    except Exception as err:
        reason = _write_failure(err, run)
        if reason is None:
            raise
        raise RunWriteError(f"cannot write to run {run.path!r}: {reason}; {_kept(run)}",
                            getattr(err, "errno", None)) from None
    return guard, initial_epoch, time.perf_counter() - started


def _tensorboard(run: RunDir) -> list:
    """The TensorBoard callback, which writes through ``tf.summary``: none without TensorFlow (the
    run still writes history.csv and curves.png)."""
    from keras_resnets.data.arrays import tensorflow_available

    if not tensorflow_available():
        print("keras-resnets: note: TensorFlow is not installed, so this run writes no TensorBoard logs "
              "(history.csv and curves.png have the same curves)", flush=True)
        return []
    return [keras.callbacks.TensorBoard(run.tensorboard, write_graph=False, profile_batch=0)]


def _kept(run: RunDir) -> str:
    """What a stopped run keeps, naming only files that exist, and what ``--resume`` does with it."""
    done = backed_up_epoch(run.backup)
    if done == 0:
        return "no epoch finished, so nothing is lost: --resume (resume=True) starts it from the first epoch"
    return (f"{done} finished epoch{'s are' if done > 1 else ' is'} kept ({os.path.join(run.backup, '')}) "
            f"and --resume (resume=True) continues from epoch {done + 1}")


def _write_failure(err: Exception, run: RunDir) -> str | None:
    """Why writing into ``run`` failed, or ``None`` when ``err`` is not a write failure there.

    Python writers raise ``OSError``; TensorFlow's (TensorBoard events) raise an ``OpError`` naming the file.
    """
    if isinstance(err, RunWriteError):
        return str(err).split("; ")[0].split(": ", 1)[-1]
    if isinstance(err, OSError):
        return err.strerror or str(err).strip().splitlines()[0]
    first_line = str(err).strip().splitlines()[0] if str(err).strip() else ""
    names_run = run.path in first_line or os.path.abspath(run.path) in first_line
    if type(err).__module__.startswith("tensorflow") and names_run:
        return first_line.rsplit(";", 1)[-1].strip() or type(err).__name__
    return None


def raise_diverged(run: RunDir, guard, lr: float) -> None:
    """Record a diverged run in ``metrics.json`` and raise ``TrainingDivergedError`` (naming only files that exist)."""
    epoch, batch, loss = guard.diverged_at
    good = backed_up_epoch(run.backup)
    weights = run.last_weights if good and os.path.isfile(run.last_weights) else None
    run.write_metrics({"status": "diverged", "diverged_at_epoch": epoch + 1, "diverged_at_batch": batch + 1,
                       "diverged_loss": loss, "last_good_epoch": good, "last_good_weights": weights})
    if weights:
        kept = (f"The last good weights (epoch {good}) are in {weights!r} and resume=True (--resume) continues "
                f"from them")
    else:
        kept = (f"No epoch finished, so no checkpoint was kept: a rerun starts afresh (remove {run.path!r} or "
                f"choose another run name)")
    raise TrainingDivergedError(f"loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped. "
                                f"{kept}; try a lower lr (was {lr}) or warmup_steps")
