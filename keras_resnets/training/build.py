"""Step "build model": create the registered model, load weights from an earlier run, freeze, compile.

Staged training (Yu & Koltun): train a front-end run, then a model with the context module on top
of it, ``init_from`` the front-end run: every layer whose name and weight shapes match is loaded,
and ``freeze="backbone"`` keeps those loaded layers fixed while the new ones (the context module)
train.
"""
from __future__ import annotations

import contextlib
import os

import keras

from keras_resnets.runs import RunConfig
from keras_resnets.tasks import TASKS, get_task
from keras_resnets.training import recipes as recipes_lib
from keras_resnets.training import schedules
from keras_resnets.training.fused_batch_norm import use_fused_batch_norm


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
                  from_logits: bool = False, task=TASKS[0], extra_metrics=(), fused_batch_norm: bool = True) -> keras.Model:
    """Compile ``model`` for ``recipe``: its optimizer (SGD with momentum, or Adam), schedule and weight
    decay, the task's loss and metrics.

    Args:
        model: an uncompiled Keras model.
        recipe: hyper-parameters (lr, momentum, weight decay and its mode, schedule, warm-up).
        total_steps: optimiser iterations of the whole run (the schedule's time axis).
        jit_compile: XLA-compile the train step.
        from_logits: the model outputs logits (no softmax).
        task: a ``keras_resnets.tasks.Task`` or its name: it gives the loss and the metrics.
        extra_metrics: further Keras metrics to log (e.g. the cross-entropy without the L2 penalty,
            which Keras' ``loss`` includes).
        fused_batch_norm: on the TensorFlow backend, BN layers train through TensorFlow's fused kernel
            (``keras_resnets.training.fused_batch_norm``; 1.1-1.3x less CPU time per step, same results to
            float32 rounding).

    Returns:
        The same model, compiled.
    """
    schedule = schedules.build_schedule(
        recipe.schedule, recipe.lr, total_steps, lr_ratio=recipe.lr_ratio, warmup_steps=recipe.warmup_steps
    )
    decoupled = recipe.weight_decay_mode == "decoupled"
    if recipe.weight_decay and not decoupled:
        add_l2_weight_decay(model, recipe.weight_decay)
    decay = recipe.weight_decay if decoupled and recipe.weight_decay else None
    if recipe.optimizer == "adam":
        optimizer = keras.optimizers.Adam(learning_rate=schedule, weight_decay=decay)
    else:
        optimizer = keras.optimizers.SGD(learning_rate=schedule, momentum=recipe.momentum, nesterov=recipe.nesterov,
                                         weight_decay=decay)
    run_task = get_task(task)
    if fused_batch_norm:
        use_fused_batch_norm(model)
    model.compile(optimizer=optimizer, loss=run_task.loss(from_logits),
                  metrics=run_task.metrics(int(model.output_shape[-1])) + list(extra_metrics), jit_compile=jit_compile)
    return model


def run_model_file(run_dir: str) -> str:
    """``best.keras`` of a run directory, else its ``final.keras``."""
    from keras_resnets.runs import RunDir

    path = RunDir(run_dir).model_file("best")
    if path is not None:
        return path
    raise ValueError(f"{run_dir!r} is not a run directory with best.keras or final.keras")


def load_model_file(path: str, **kwargs) -> keras.Model:
    """``keras.saving.load_model(path, **kwargs)`` with the package's layers registered, and an error
    of our own for a file that is missing or damaged (Keras reports a truncated file as not found).

    Raises:
        ValueError: one line naming the file and what is wrong with it.
    """
    import zipfile

    import keras_resnets.layers  # noqa: F401  registers the package's layers for loading

    if not os.path.isfile(path):
        raise ValueError(f"model file {path!r} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        broken = f"not a complete .keras archive: {err}"
    if broken is not None:
        raise ValueError(f"model file {path!r} exists but is damaged (truncated or corrupt; {broken}); "
                         f"train the run again or use another model file")
    return keras.saving.load_model(path, **kwargs)


def load_matching_weights(model: keras.Model, run_dir: str) -> list:
    """Copy into ``model`` the weights of every layer of ``run_dir``'s model with the same name and shapes.

    Returns:
        Names of the layers loaded.

    Raises:
        ValueError: no layer matches (the two models share nothing).
    """
    source = load_model_file(run_model_file(run_dir), compile=False)
    by_name = {layer.name: layer for layer in source.layers if layer.weights}
    loaded = []
    for layer in model.layers:
        other = by_name.get(layer.name)
        if not layer.weights or other is None:
            continue
        if [tuple(w.shape) for w in layer.weights] == [tuple(w.shape) for w in other.weights]:
            layer.set_weights(other.get_weights())
            loaded.append(layer.name)
    if not loaded:
        raise ValueError(f"init_from {run_dir!r}: no layer of {source.name!r} matches a layer of {model.name!r} "
                         f"by name and weight shapes")
    return loaded


def init_report(model: keras.Model, run_dir: str, loaded: list, frozen: bool) -> str:
    """One line: the layers (with weights) ``init_from`` loaded, those it skipped, and those frozen."""
    skipped = [layer.name for layer in model.layers if layer.weights and layer.name not in set(loaded)]
    shown = ", ".join(skipped[:4]) + (", ..." if len(skipped) > 4 else "")
    reason = f" (no layer of the same name and shapes in the run: {shown})" if skipped else ""
    return f"init-from {run_dir}: loaded {len(loaded)} layers, skipped {len(skipped)}{reason}, froze {len(loaded) if frozen else 0}"


def build_model(config: RunConfig, strategy=None, *, report: bool = False) -> keras.Model:
    """Create, initialise (``config.init_from``, ``config.freeze``) and compile the run's model.

    Args:
        config: the run's ``RunConfig``.
        strategy: a ``tf.distribute.Strategy`` to build under, or ``None``.
        report: print what ``init_from`` loaded, skipped and froze.
    """
    from keras_resnets.models import create_model

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(config.precision)
    try:
        scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
        with scope:
            net = create_model(config.model, input_shape=tuple(config.input_shape), classes=config.classes,
                               classifier_activation=config.classifier_activation, **config.model_kwargs)
            if config.init_from:
                loaded = load_matching_weights(net, config.init_from)
                for layer in net.layers:
                    if config.freeze == "backbone" and layer.name in loaded:
                        layer.trainable = False
                if report:
                    print(init_report(net, config.init_from, loaded, frozen=config.freeze == "backbone"), flush=True)
            compile_model(net, recipes_lib.recipe_of(config), config.total_steps, jit_compile=config.jit_compile,
                          from_logits=config.classifier_activation is None, task=config.task)
    finally:
        keras.config.set_dtype_policy(previous_policy)
    return net
