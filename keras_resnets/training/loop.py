"""Training: ``compile_model``, ``fit_model`` and the one-call ``train``.

``train`` owns a run from arguments to artifacts: it validates every argument before touching
disk, loads the data once, builds and compiles the model (inside a ``tf.distribute`` strategy's
scope when one is given), fits with checkpointing and resume, evaluates on the test split and
writes the run directory. The tuner reuses the pieces: ``load_dataset`` (once), ``compile_model``,
``fit_model``.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, field

import keras

from keras_resnets.training import recipes as recipes_lib
from keras_resnets.training import schedules
from keras_resnets.training.callbacks import (
    EpochCheckpoint,
    GuardedBackupAndRestore,
    LearningRateLogger,
    NonFiniteLossGuard,
    TrainingDivergedError,
    backed_up_epoch,
)
from keras_resnets.training.runs import default_run_name, plot_curves, prepare_run_dir, read_history, write_json

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
XLA_MODES = ("auto", "on", "off")
DEFAULT_RECIPE = "cifar10_study"


@dataclass
class RunResult:
    """What ``train`` returns.

    Attributes:
        metrics: the content of ``metrics.json`` (test accuracy, best validation accuracy, times...).
        paths: artifact name -> path (see ``RunPaths.to_dict``).
        history: per-epoch metrics of the whole run (resumed epochs included).
    """

    metrics: dict
    paths: dict
    history: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> str:
        return self.paths["run_dir"]


def resolve_jit_compile(xla="auto") -> bool:
    """Whether to XLA-compile the train step.

    ``auto``: on with the JAX backend and wherever TensorFlow sees a GPU or TPU; off on a CPU-only
    TensorFlow, where XLA measured several times slower for CIFAR ResNets (docs/training.md).

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
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_physical_devices("TPU"))


def add_l2_weight_decay(model: keras.Model, weight_decay: float) -> int:
    """Penalise the kernels of ``model`` with ``weight_decay / 2 * ||w||^2`` (coupled weight decay).

    The gradient of this penalty is ``weight_decay * w``, exactly the papers' SGD weight decay.
    Biases and BatchNormalization parameters are not decayed.

    Args:
        model: the model (its variables get a ``regularizer``).
        weight_decay: decay coefficient.

    Returns:
        The number of kernels regularised.
    """
    regularizer = keras.regularizers.L2(weight_decay / 2.0)
    count = 0
    for variable in model.trainable_weights:
        if variable.path.split("/")[-1] in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            variable.regularizer = regularizer
            count += 1
    return count


def compile_model(model: keras.Model, recipe: recipes_lib.Recipe, total_steps: int, *, jit_compile=False,
                  from_logits: bool = False) -> keras.Model:
    """Compile ``model`` for ``recipe``: SGD with momentum, its schedule and weight decay.

    Args:
        model: an uncompiled Keras model.
        recipe: hyper-parameters (lr, momentum, weight decay and its mode, schedule, warm-up).
        total_steps: optimiser iterations of the whole run (the schedule's time axis).
        jit_compile: XLA-compile the train step.
        from_logits: the model outputs logits (no softmax).

    Returns:
        The same model, compiled.
    """
    schedule = schedules.build_schedule(
        recipe.schedule, recipe.lr, total_steps, lr_ratio=recipe.lr_ratio, warmup_steps=recipe.warmup_steps
    )
    decoupled = recipe.weight_decay_mode == "decoupled"
    if recipe.weight_decay and not decoupled:
        add_l2_weight_decay(model, recipe.weight_decay)
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=recipe.momentum,
        nesterov=recipe.nesterov,
        weight_decay=recipe.weight_decay if decoupled and recipe.weight_decay else None,
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        jit_compile=jit_compile,
    )
    return model


def fit_model(model: keras.Model, data, epochs: int, *, initial_epoch: int = 0, validation_data=None,
              callbacks=(), verbose="auto") -> keras.callbacks.History:
    """Fit a compiled model: the one place where training iterates.

    Args:
        model: a compiled model.
        data: a ``keras_resnets.data.Datasets`` (its epoch-indexed training pipeline and validation
            split are used), or anything ``Model.fit`` accepts (tf.data, ``PyDataset``, a tuple of
            numpy arrays), e.g. for the JAX backend.
        epochs: index of the last epoch + 1.
        initial_epoch: first epoch to run (resume).
        validation_data: validation input; defaults to ``data.validation`` for ``Datasets``.
        callbacks: Keras callbacks.
        verbose: Keras verbosity (``"auto"``: progress bar).
    """
    from keras_resnets.data import Datasets

    if isinstance(data, Datasets):
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
    return model.fit(data, epochs=epochs, initial_epoch=initial_epoch, validation_data=validation_data,
                     callbacks=list(callbacks), verbose=verbose)


def _positive(name: str, value, kind=int):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)) \
            or not value > 0:
        raise ValueError(f"{name} must be a positive {'integer' if kind is int else 'number'}; got {value!r}")
    return kind(value)


def _validate(recipe: recipes_lib.Recipe, precision: str, xla) -> None:
    from keras_resnets.data import augment as augment_lib

    _positive("epochs", recipe.epochs)
    _positive("batch_size", recipe.batch_size)
    _positive("lr", recipe.lr, float)
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
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; allowed: {', '.join(PRECISIONS)}")
    resolve_jit_compile(xla)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("keras_resnets")
    except Exception:  # not installed (running from a source tree)
        return "unknown"


def train(
    model: str = "cifar_resnet20",
    dataset: str = "digits",
    *,
    recipe: str = DEFAULT_RECIPE,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    weight_decay_mode: str | None = None,
    schedule: str | None = None,
    lr_ratio: str | None = None,
    warmup_steps: int | None = None,
    augment: str | None = None,
    expand: int | None = None,
    activation: str | None = None,
    model_kwargs: dict | None = None,
    classifier_activation: str | None = "softmax",
    data_dir: str | None = None,
    image_size=None,
    channels: int | None = None,
    validation_split: float = 0.1,
    download: bool = False,
    datasets=None,
    runs_dir: str = "runs",
    run_name: str | None = None,
    resume: bool = False,
    seed: int = 0,
    deterministic: bool = False,
    xla="auto",
    precision: str = "float32",
    strategy=None,
    distribute: str | None = None,
    callbacks=(),
    verbose="auto",
) -> RunResult:
    """Train a registered model on a dataset and write a run directory.

    Args:
        model: registry name (``keras_resnets.list_models()``), e.g. ``cifar_resnet56``.
        dataset: ``digits`` (embedded, offline), ``folder`` or a TFDS name (``cifar10``, ...).
        recipe: named recipe giving the defaults (``keras_resnets.training.recipes.RECIPES``).
        epochs, batch_size, lr, momentum, weight_decay, weight_decay_mode, schedule, lr_ratio,
            warmup_steps, augment, expand: override the recipe's field of the same name.
        activation: the model's activation (``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``, ...).
        model_kwargs: other keywords of ``create_model`` (e.g. ``{"depth": 8}``).
        classifier_activation: output activation; ``None`` trains on logits.
        data_dir: TFDS data dir, or the image folder for ``folder``.
        image_size: ``(height, width)`` of the images (see ``load_dataset``).
        channels: 1 or 3 (see ``load_dataset``).
        validation_split: fraction of training images held out for validation.
        download: let TFDS download a missing dataset.
        datasets: an already loaded ``Datasets`` to reuse (then ``dataset`` only names it).
        runs_dir: parent folder of run directories.
        run_name: this run's folder (default ``<model>-<dataset>-<time>``).
        resume: continue ``runs_dir/run_name`` from its last completed epoch.
        seed: seed of weights, shuffling and augmentation.
        deterministic: bit-reproducible training (TensorFlow op determinism; slower).
        xla: ``auto`` (on with accelerators, off on CPU), ``on`` or ``off``.
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.
        strategy: a ``tf.distribute.Strategy`` to build and train under.
        distribute: data-parallel training: ``data_parallel`` (JAX backend, ``keras.distribution``;
            several processes via ``KERAS_DISTRIBUTION_*``) or ``mirrored`` (TensorFlow backend,
            ``MirroredStrategy``); see ``keras_resnets.training.distributed``.
        callbacks: extra Keras callbacks.
        verbose: Keras verbosity.

    Returns:
        ``RunResult`` with the metrics and artifact paths.

    Raises:
        ValueError: a bad argument (the message names it and the allowed values), or an existing
            run directory without ``resume``.
        keras_resnets.data.DatasetUnavailableError: the dataset's files are missing.
        TrainingDivergedError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    arguments = dict(locals())  # exactly train's arguments: the distributed path re-enters train with them
    from keras_resnets.training import distributed

    if distribute is not None:
        return distributed.train_distributed(train, arguments)
    from keras_resnets.data import load_dataset
    from keras_resnets.models import create_model, get_entry

    base = recipes_lib.get_recipe(recipe)
    run_recipe = recipes_lib.with_overrides(
        base, epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
        weight_decay_mode=weight_decay_mode, schedule=schedule, lr_ratio=lr_ratio, warmup_steps=warmup_steps,
        augment=augment, expand=expand,
    )
    _validate(run_recipe, precision, xla)
    get_entry(model)
    model_kwargs = dict(model_kwargs or {})
    if activation is not None:
        model_kwargs["activation"] = activation
    jit_compile = resolve_jit_compile(xla)
    paths = prepare_run_dir(runs_dir, run_name or default_run_name(model, dataset), resume)

    keras.utils.set_random_seed(seed)
    if deterministic and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    data = datasets or load_dataset(
        dataset, data_dir=data_dir, batch_size=run_recipe.batch_size, augment=run_recipe.augment,
        expand=run_recipe.expand, image_size=image_size, channels=channels,
        validation_split=validation_split, seed=seed, download=download,
    )
    data = distributed.shard_ready(data)  # unchanged unless a keras.distribution spans several devices
    steps = data.steps_per_epoch
    total_epochs = run_recipe.epochs or math.ceil(run_recipe.iterations / steps)
    run_recipe = recipes_lib.with_overrides(run_recipe, epochs=total_epochs)
    info = data.info

    config = {
        "model": model,
        "model_kwargs": model_kwargs,
        **info.to_config(),
        "data_dir": data_dir,
        "classifier_activation": classifier_activation,
        "recipe": recipe,
        **run_recipe.to_dict(),
        "steps_per_epoch": steps,
        "total_steps": total_epochs * steps,
        "seed": seed,
        "deterministic": deterministic,
        "precision": precision,
        "jit_compile": jit_compile,
        "backend": keras.backend.backend(),
        "keras_resnets_version": _version(),
    }
    config.pop("name")
    config.pop("description")
    if not resume:
        write_json(paths.config, config)

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            net = create_model(model, input_shape=info.image_shape, classes=info.num_classes,
                               classifier_activation=classifier_activation, **model_kwargs)
            compile_model(net, run_recipe, total_epochs * steps, jit_compile=jit_compile,
                          from_logits=classifier_activation is None)
    finally:
        keras.config.set_dtype_policy(previous_policy)

    initial_epoch = backed_up_epoch(paths.backup) if resume else 0
    previous_best = max(read_history(paths.history).get("val_accuracy", []), default=-math.inf)
    guard = NonFiniteLossGuard()
    run_callbacks = [
        guard,
        LearningRateLogger(),
        GuardedBackupAndRestore(paths.backup, guard),
        EpochCheckpoint(paths.last_weights, paths.best_model, guard, best=previous_best),
        keras.callbacks.CSVLogger(paths.history, append=resume),
        keras.callbacks.TensorBoard(paths.tensorboard, write_graph=False, profile_batch=0),
        *callbacks,
    ]
    started = time.perf_counter()
    if initial_epoch < total_epochs:
        fit_model(net, data, total_epochs, initial_epoch=initial_epoch, callbacks=run_callbacks, verbose=verbose)
    train_seconds = time.perf_counter() - started
    plot_curves(paths.history, paths.curves)
    history = read_history(paths.history)

    if guard.diverged_at is not None:
        epoch, batch, loss = guard.diverged_at
        good = backed_up_epoch(paths.backup)
        write_json(paths.metrics, {"status": "diverged", "diverged_at_epoch": epoch + 1, "diverged_at_batch": batch + 1,
                                   "last_good_epoch": good, "last_good_weights": paths.last_weights})
        raise TrainingDivergedError(
            f"loss became {loss} at epoch {epoch + 1}, batch {batch + 1}; training stopped. The last good "
            f"weights (epoch {good}) are in {paths.last_weights!r} and resume=True continues from them; "
            f"try a lower lr (was {run_recipe.lr}) or warmup_steps"
        )

    net.save(paths.final_model)
    test_loss, test_accuracy = net.evaluate(data.test, verbose=0)
    best_test_accuracy = None
    if os.path.exists(paths.best_model):
        best = keras.saving.load_model(paths.best_model)
        best.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=classifier_activation is None),
                     metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
        best_test_accuracy = float(best.evaluate(data.test, verbose=0)[1])
    epochs_run = total_epochs - initial_epoch
    metrics = {
        "status": "completed",
        "model": model,
        "dataset": info.name,
        "params": int(net.count_params()),
        "epochs": total_epochs,
        "epochs_this_session": epochs_run,
        "resumed_from_epoch": initial_epoch,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "best_val_accuracy": max(history.get("val_accuracy", []), default=None),
        "best_model_test_accuracy": best_test_accuracy,
        "final_train_accuracy": (history.get("accuracy") or [None])[-1],
        "train_seconds": round(train_seconds, 2),
        "train_images_per_second": round(epochs_run * info.num_train / train_seconds, 1) if epochs_run else None,
        "jit_compile": jit_compile,
        "precision": precision,
    }
    write_json(paths.metrics, metrics)
    return RunResult(metrics=metrics, paths=paths.to_dict(), history=history)
