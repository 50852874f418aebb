"""``train``: one call from a model name and a dataset to a finished run directory.

``train`` runs the steps of ``keras_resnets.training.steps`` in order — plan (validate every
argument), prepare data, build the model, create the run directory (atomically, only now), fit,
evaluate and write — for any task (classification, segmentation). The tuner reuses the pieces:
the dataset registry, ``compile_model``, ``fit_model``.
"""
from __future__ import annotations

from dataclasses import dataclass, field


from keras_resnets.runs import DataOptions, RunDir, RunOptions
from keras_resnets.training.build import add_l2_weight_decay, build_model, compile_model  # noqa: F401
from keras_resnets.training.steps import (  # noqa: F401  (resolve_jit_compile, PRECISIONS: public names)
    AUTO,
    PRECISIONS,
    XLA_MODES,
    TrainOptions,
    build_run_config,
    check_resume_request,
    describe_recipe,
    fit_model,
    fit_run,
    plan_run,
    prepare_data,
    raise_diverged,
    reconcile_resume,
    resolve_jit_compile,
)

DEFAULT_RECIPE = "cifar10_study"


@dataclass
class RunResult:
    """What ``train`` returns.

    Attributes:
        metrics: the content of ``metrics.json`` (test metrics of the task, best validation value, times...).
        paths: artifact name -> path (see ``RunDir.to_dict``).
        history: per-epoch metrics of the whole run (resumed epochs included).
    """

    metrics: dict
    paths: dict
    history: dict = field(default_factory=dict)

    @property
    def run_dir(self) -> str:
        return self.paths["run_dir"]


def train(
    model: str = "cifar_resnet20",
    dataset: str = "digits",
    *,
    recipe: str | None = None,
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
    optimizer: str | None = None,
    activation: str | None = None,
    model_kwargs: dict | None = None,
    classifier_activation: str | None = AUTO,
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
    continue_epochs: int | None = None,
    init_from: str | None = None,
    freeze: str = "none",
    seed: int = 0,
    deterministic: bool = False,
    xla="auto",
    precision: str = "float32",
    strategy=None,
    distribute: str | None = None,
    callbacks=(),
    verbose="auto",
) -> RunResult:
    """Train a registered model on a registered dataset and write a run directory.

    Args:
        model: registry name (``keras_resnets.list_models()``), e.g. ``cifar_resnet56``,
            ``dilated_resnet18_seg``.
        dataset: a name of the dataset registry (``digits``, ``folder``, ``shapes``,
            ``oxford_iiit_pet``, ...; ``keras_resnets.data.registry``) or any TFDS classification
            name; its task (classification or segmentation) is the run's.
        recipe: named recipe giving the defaults (``keras_resnets.training.recipes.RECIPES``);
            default: the task's (``cifar10_study``, ``shapes_segmentation``).
        epochs, batch_size, lr, momentum, weight_decay, weight_decay_mode, schedule, lr_ratio,
            warmup_steps, augment, expand, optimizer: override the recipe's field of the same name.
        activation: the model's activation (``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``, ...).
        model_kwargs: other keywords of ``create_model`` (e.g. ``{"depth": 8}``).
        classifier_activation: output activation; ``None`` trains on logits; ``"auto"``: the task's
            (softmax for classification, per-pixel logits for segmentation).
        data_dir: TFDS data dir, or the image folder for ``folder``.
        image_size: ``(height, width)`` of the images (see ``load_dataset``).
        channels: 1 or 3 (see ``load_dataset``).
        validation_split: fraction of training images held out for validation.
        download: let TFDS download a missing dataset.
        dataset_kwargs: options of the dataset's loader (``shapes``: ``num_train``,
            ``num_validation``, ``max_shapes``; ``oxford_iiit_pet``: ``border_label``).
        datasets: an already loaded ``Datasets`` to reuse (then ``dataset`` only names it).
        runs_dir: parent folder of run directories.
        run_name: this run's folder (default ``<model>-<dataset>-<time>``).
        resume: continue ``runs_dir/run_name`` from its last completed epoch; a finished run is left
            as it is (a message says so) unless ``continue_epochs`` is given.
        continue_epochs: with ``resume``, train a finished (or unfinished) run this many epochs more.
        init_from: a run directory whose model's layers initialise the layers of the same name and
            shapes (staged training: front-end first, then the context module on top).
        freeze: ``none`` or ``backbone`` (keep the layers loaded by ``init_from`` fixed).
        seed: seed of weights, shuffling and augmentation.
        deterministic: bit-reproducible training (TensorFlow op determinism; slower).
        xla: ``auto`` (on with accelerators, off on CPU), ``on`` or ``off``.
        precision: ``float32``, ``mixed_bfloat16`` or ``mixed_float16``.
        strategy: a ``tf.distribute.Strategy`` to build and train under.
        distribute: data-parallel training: ``data_parallel`` (JAX backend, ``keras.distribution``;
            several processes via ``KERAS_DISTRIBUTION_*``) or ``mirrored`` (TensorFlow backend,
            ``MirroredStrategy``); see ``keras_resnets.training.distributed``.
        callbacks: extra Keras callbacks.
        verbose: Keras verbosity; ``"auto"``: a progress bar on a terminal, one line per epoch otherwise.

    Returns:
        ``RunResult`` with the metrics and artifact paths.

    Raises:
        ValueError: a bad argument (the message names it and the allowed values); an existing run
            directory without ``resume``; a resume whose settings differ (naming the keys);
            ``keras_resnets.runs.RunInUseError`` when another process holds the run.
        keras_resnets.runs.RunWriteError: an artifact could not be written (earlier ones intact).
        keras_resnets.data.DatasetUnavailableError: the dataset's files are missing.
        TrainingDivergedError: the loss became NaN/inf (the last good checkpoint is kept).
    """
    options = TrainOptions(
        model=model, recipe=recipe, activation=activation, model_kwargs=dict(model_kwargs or {}),
        classifier_activation=classifier_activation, continue_epochs=continue_epochs, init_from=init_from,
        freeze=freeze, deterministic=deterministic, precision=precision,
        recipe_overrides={k: v for k, v in dict(
            epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, weight_decay=weight_decay,
            weight_decay_mode=weight_decay_mode, schedule=schedule, lr_ratio=lr_ratio, warmup_steps=warmup_steps,
            augment=augment, expand=expand, optimizer=optimizer).items() if v is not None},
        data=DataOptions(dataset, dataset_kwargs, data_dir, image_size, channels, validation_split, download),
        run=RunOptions(runs_dir, run_name, resume, seed, xla),
    )
    if distribute is not None:
        from keras_resnets.training import distributed

        plan = plan_run(options)  # every argument checked before the cluster forms
        return distributed.train_distributed(
            lambda run_name, strategy=None: train_with(options.named(run_name), datasets, strategy, callbacks,
                                                       verbose),
            distribute, batch_size=datasets.batch_size if datasets is not None else plan.recipe.batch_size,
            run_name=plan.run_name, strategy=strategy)
    return train_with(options, datasets, strategy, callbacks, verbose)


def train_with(options: TrainOptions, datasets=None, strategy=None, callbacks=(), verbose="auto") -> RunResult:
    """``train`` from its typed options: plan, prepare data, build, create or open the run, fit, report.

    Args:
        options: the run's ``TrainOptions``.
        datasets, strategy, callbacks, verbose: as for ``train``.
    """
    plan = plan_run(options)
    resume, continue_epochs = options.run.resume, options.continue_epochs
    if resume:
        run = RunDir.open(plan.run.runs_dir, plan.run_name)
        _check_or_release(run, plan)
    else:
        RunDir.check_free(plan.run.runs_dir, plan.run_name)  # early: before any work
        run = None
    try:
        if run is not None and run.is_completed() and not continue_epochs:
            return _finished(run)
        data = prepare_data(plan, datasets)
        config = build_run_config(plan, data)
        if run is not None:
            config = reconcile_resume(run, config, continue_epochs)
        if verbose != 0:
            recipe_line = describe_recipe(config, plan.given, data.info.mirrorable)
            print(f"train: {config.model} on {config.dataset}; {recipe_line}", flush=True)
            from keras_resnets.calibration import recommendation

            hint = recommendation(config.model, config.input_shape, config.batch_size)
            if hint:
                print(hint, flush=True)
        net = build_model(config, strategy, report=verbose != 0)
        if run is None:
            run = RunDir.create(plan.run.runs_dir, plan.run_name, config)
        elif continue_epochs:
            run.write_config(config)
        return _fit_and_report(net, data, run, config, resume, callbacks, verbose)
    finally:
        if run is not None:
            run.release()


def _check_or_release(run: RunDir, plan) -> None:
    try:
        check_resume_request(run, plan)
    except Exception:
        run.release()
        raise


def _finished(run: RunDir) -> RunResult:
    """A resumed run that already finished: nothing is trained or written."""
    from keras_resnets.training.artifacts import read_history

    metrics = run.read_metrics()
    print(f"run {run.path!r} already finished its {metrics.get('epochs')} epochs; nothing to do "
          f"(continue_epochs=N / --continue-epochs N trains N more)", flush=True)
    return RunResult(metrics=metrics, paths=run.to_dict(), history=read_history(run.history))


def _fit_and_report(net, data, run: RunDir, config, resume: bool, callbacks, verbose) -> RunResult:
    from keras_resnets.training.artifacts import read_history
    from keras_resnets.training.results import evaluate_and_write

    guard, initial_epoch, seconds = fit_run(net, data, run, config, resume, callbacks, verbose)
    if guard.diverged_at is not None:
        from keras_resnets.training.artifacts import plot_curves
        from keras_resnets.tasks import get_task

        plot_curves(run.history, run.curves, metric=get_task(config.task).metric)
        raise_diverged(run, guard, config.lr)
    metrics = evaluate_and_write(net, data, run, config, initial_epoch=initial_epoch, seconds=seconds)
    return RunResult(metrics=metrics, paths=run.to_dict(), history=read_history(run.history))
