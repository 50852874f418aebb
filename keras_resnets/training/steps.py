"""``train`` in steps: plan -> prepare data -> build model -> fit -> evaluate and write.

Each step takes the run's plan or ``RunConfig`` and does one thing; ``keras_resnets.training.train``
calls them in order. The run directory is created (atomically) only after the data loaded and the
model built, so a failed ``train`` leaves nothing behind (docs/guarantees.md).
"""
from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass, field

import keras

from keras_resnets.checks import positive
from keras_resnets.environment import package_version
from keras_resnets.runs import (
    FREEZE_MODES,
    MACHINE_KEYS,
    DataOptions,
    RunConfig,
    RunDir,
    RunOptions,
    RunWriteError,
    check_resumable,
)
from keras_resnets.tasks import Task, get_task
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
RECIPE_ARGUMENTS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "weight_decay_mode", "schedule",
                    "lr_ratio", "warmup_steps", "augment", "expand", "optimizer")


@dataclass(frozen=True)
class TrainOptions:
    """A ``train`` call's arguments, typed: the model, the data and run options ``tune`` shares, the
    recipe and the fields that override it, and the training choices. ``plan_run`` checks them.

    Attributes:
        recipe_overrides: the recipe fields given as arguments (``RECIPE_ARGUMENTS``), ``None`` left out.
        The others: the ``train`` keywords of the same name.
    """

    model: str
    data: DataOptions
    run: RunOptions
    recipe: str | None = None
    recipe_overrides: dict = field(default_factory=dict)
    activation: str | None = None
    model_kwargs: dict = field(default_factory=dict)
    classifier_activation: str | None = AUTO
    continue_epochs: int | None = None
    init_from: str | None = None
    freeze: str = "none"
    deterministic: bool = False
    precision: str = "float32"

    def named(self, run_name: str) -> "TrainOptions":
        """These options with the run renamed (the workers of a distributed run)."""
        return dataclasses.replace(self, run=self.run.named(run_name))


@dataclass(frozen=True)
class TrainPlan:
    """``TrainOptions`` checked and resolved (no data loaded, nothing written yet): the task, the
    recipe with its overrides, the model keywords, the output activation, the run name, XLA."""

    options: TrainOptions
    task: Task
    recipe: recipes_lib.Recipe
    model_kwargs: dict
    classifier_activation: str | None
    run_name: str
    jit_compile: bool
    given: frozenset = frozenset()  # the recipe fields (and "recipe") set by an argument, not by the recipe

    model = property(lambda self: self.options.model)
    data = property(lambda self: self.options.data)
    run = property(lambda self: self.options.run)


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


def plan_run(options: TrainOptions) -> TrainPlan:
    """Check ``train``'s options (everything that needs no data) into a ``TrainPlan``.

    Raises:
        ValueError: the first bad argument, naming its value and the allowed ones.
    """
    from keras_resnets.data.registry import task_of

    task = task_of(options.model, options.data.dataset)
    unknown = sorted(set(options.recipe_overrides) - set(RECIPE_ARGUMENTS))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a recipe field; allowed: {', '.join(RECIPE_ARGUMENTS)}")
    base = recipes_lib.get_recipe(options.recipe or recipes_lib.default_recipe(options.model, task))
    recipe = recipes_lib.with_overrides(base, **options.recipe_overrides)
    validate_recipe(recipe)
    if options.precision not in PRECISIONS:
        raise ValueError(f"unknown precision {options.precision!r}; allowed: {', '.join(PRECISIONS)}")
    _check_staging(options.init_from, options.freeze, options.run.resume, options.continue_epochs)
    model_kwargs = dict(options.model_kwargs or {})
    if options.activation is not None:
        model_kwargs["activation"] = options.activation
    activation = options.classifier_activation
    return TrainPlan(
        options=options, task=task, recipe=recipe, model_kwargs=model_kwargs,
        classifier_activation=task.default_classifier_activation if activation == AUTO else activation,
        run_name=options.run.name(options.model, options.data.dataset),
        jit_compile=resolve_jit_compile(options.run.xla),
        given=frozenset(options.recipe_overrides) | ({"recipe"} if options.recipe is not None else set()),
    )


def describe_recipe(config: RunConfig, given=frozenset(), mirrorable: bool = True) -> str:
    """One line: the effective recipe and where each value came from (``[set]``: an argument or flag).

    ``given``: the names set by an argument (``TrainPlan.given``); the other values are the recipe's.
    ``mirrorable``: the dataset's (``DatasetInfo.mirrorable``); the ``*flip*`` policies do not mirror others.
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
    if not mirrorable:
        from keras_resnets.data.augment import MIRRORING_POLICIES  # TensorFlow: loaded with the data by now

        if config.augment in MIRRORING_POLICIES:
            augment += f" (no flip: a mirrored {config.dataset} image changes its label)"
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
    from keras_resnets.training import distributed

    keras.utils.set_random_seed(plan.run.seed)
    if plan.options.deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = datasets or plan.data.load(batch_size=plan.recipe.batch_size, augment=plan.recipe.augment,
                                      expand=plan.recipe.expand, seed=plan.run.seed)
    return distributed.shard_ready(data)  # unchanged unless a keras.distribution spans several devices


def requested_values(plan: TrainPlan) -> dict:
    """The ``config.json`` values a plan fixes before any data loads (what resume compares first;
    the machine's keys, such as ``data_dir``, left out)."""
    options = plan.options
    recipe = {k: v for k, v in plan.recipe.to_dict().items() if k in RunConfig.keys() and v is not None}
    values = {"model": plan.model, "model_kwargs": plan.model_kwargs, **plan.data.config_values(),
              "task": plan.task.name, "classifier_activation": plan.classifier_activation,
              "recipe": plan.recipe.name, **recipe, "init_from": options.init_from, "freeze": options.freeze,
              "seed": plan.run.seed, "deterministic": options.deterministic, "precision": options.precision}
    return {k: v for k, v in values.items() if k not in MACHINE_KEYS}


def build_run_config(plan: TrainPlan, data) -> RunConfig:
    """The run's ``RunConfig``: the plan plus what the data tells (shapes, classes, normalisation, steps)."""
    steps = data.steps_per_epoch
    epochs = plan.recipe.epochs or math.ceil(plan.recipe.iterations / steps)
    return RunConfig(**{
        **requested_values(plan), **data.info.to_config(), "data_dir": plan.data.data_dir, "epochs": epochs,
        "steps_per_epoch": steps, "total_steps": epochs * steps, "jit_compile": plan.jit_compile,
        "backend": keras.backend.backend(), "keras_resnets_version": package_version()})


def check_resume_request(run: RunDir, plan: TrainPlan) -> None:
    """Refuse early (before data loads) a resume whose settings differ from the run's, naming the keys.

    ``epochs`` may differ only through ``continue_epochs``.

    Raises:
        RunError: the settings differ.
    """
    requested = requested_values(plan)
    if plan.options.continue_epochs or requested.get("epochs") is None:
        requested.pop("epochs", None)
    check_resumable(run.path, run.read_config().to_dict(), requested)


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
    ignore = MACHINE_KEYS + (("epochs", "total_steps") if continue_epochs else ())
    check_resumable(run.path, stored.to_dict(), {k: v for k, v in config.to_dict().items() if k not in ignore})
    return config


def fit_model(model: keras.Model, data, epochs: int, *, initial_epoch: int = 0, validation_data=None,
              callbacks=(), verbose="auto", steps_per_epoch: int | None = None) -> keras.callbacks.History:
    """Fit a compiled model: the one place where training iterates.

    Args:
        model: a compiled model.
        data: a ``keras_resnets.data.Datasets`` or anything with its interface (its epoch-indexed
            training pipeline and validation split are used), or anything ``Model.fit`` accepts (tf.data, ``PyDataset``, a tuple of
            numpy arrays), e.g. for the JAX backend.
        epochs: index of the last epoch + 1.
        initial_epoch: first epoch to run (resume).
        validation_data: validation input; defaults to ``data.validation`` for ``Datasets``.
        callbacks: Keras callbacks.
        verbose: Keras verbosity (``"auto"``: progress bar).
        steps_per_epoch: batches per epoch of a pipeline whose length TensorFlow cannot tell (Keras
            warns that it "ran out of data" without it); ``Datasets`` know their own.
    """
    from keras_resnets.data.contract import DatasetPipelines

    if isinstance(data, DatasetPipelines):
        return model.fit(
            data.train(epochs, initial_epoch),
            epochs=epochs,
            initial_epoch=initial_epoch,
            steps_per_epoch=data.steps_per_epoch,
            validation_data=data.validation if validation_data is None else validation_data,
            callbacks=list(callbacks),
            verbose=verbose,
            shuffle=False,  # the pipeline shuffles, per epoch, from (seed, epoch)
        )
    if isinstance(data, tuple) and len(data) == 2:
        return model.fit(*data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                         callbacks=list(callbacks), verbose=verbose)
    tf = sys.modules.get("tensorflow")  # a tf.data pipeline orders its own batches; never import TF for this
    pipeline = tf is not None and isinstance(data, tf.data.Dataset)
    return model.fit(data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                     callbacks=list(callbacks), verbose=verbose, shuffle=not pipeline, steps_per_epoch=steps_per_epoch)


def fit_run(net, data, run: RunDir, config: RunConfig, resume: bool, callbacks=(), verbose="auto"):
    """Fit with checkpoints, backups and the history; returns ``(guard, initial_epoch, seconds)``.

    Raises:
        RunWriteError: an artifact could not be written; the previous checkpoints are intact.
    """
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
