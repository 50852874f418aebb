"""``ResNetHyperModel``: a KerasTuner ``HyperModel`` over any registered model.

``build`` creates the model with ``create_model`` and compiles it with the training code's
``compile_model`` (SGD, the recipe's weight decay and the lr-ratio schedule); ``fit`` trains it with
``fit_model`` on the epoch-indexed pipeline of ``load_dataset``. A trial therefore trains exactly as
``keras-resnets train`` would with the same values. The dataset is loaded once per search; a trial
only swaps the augmentation policy and batch size of the training pipeline (``dataclasses.replace``
on ``Datasets``), so no trial re-reads or re-normalises data, and the validation split stays cached.
"""
from __future__ import annotations

import collections
import dataclasses

import keras
import keras_tuner

from keras_resnets.models import create_model
from keras_resnets.tasks import TASKS, get_task
from keras_resnets.training import compile_model, fit_model
from keras_resnets.training import recipes as recipes_lib
from keras_resnets.training.callbacks import NonFiniteLossGuard
from keras_resnets.tuning.space import MODEL_KEYS, SearchSpace


class ResNetHyperModel(keras_tuner.HyperModel):
    """Builds and trains one trial's model from its hyper-parameter values.

    Args:
        model: registry name (``keras_resnets.list_models()``).
        space: the ``SearchSpace``.
        datasets: ``keras_resnets.data.Datasets`` loaded once for the whole search; ``None`` only
            for a distributed chief, which hands out trials and never trains.
        epochs: epochs of a trial (Hyperband passes each trial's own budget instead).
        recipe: the training recipe whose fields the space does not set (lr, momentum, weight
            decay...); its schedule becomes ``lr_ratio`` when the space tunes the ratio.
        model_kwargs: fixed ``create_model`` keywords (e.g. ``{"depth": 8}``).
        classifier_activation: output activation; ``None`` trains on logits.
        objective: ``keras_tuner.Objective`` (early stopping watches it).
        early_stopping_patience: stop a trial after this many epochs without improving the
            objective; ``None`` trains every trial to its budget.
        jit_compile: XLA-compile the train step (see ``keras_resnets.training.resolve_jit_compile``).
        seed: seed of the weights; the n-th execution of the same values uses ``seed + n``.
        task: the ``keras_resnets.tasks.Task`` (loss, metrics) or its name; default classification.
    """

    def __init__(self, model: str, space: SearchSpace, datasets, *, epochs: int,
                 recipe: recipes_lib.Recipe, model_kwargs: dict | None = None,
                 classifier_activation: str | None = "softmax", objective: keras_tuner.Objective,
                 early_stopping_patience: int | None = None, jit_compile: bool = False, seed: int = 0,
                 task=None):
        super().__init__(name=f"{model}_hypermodel", tunable=True)
        self.model_name = model
        self.space = space
        self.datasets = datasets
        self.epochs = epochs
        self.recipe = recipe
        self.model_kwargs = dict(model_kwargs or {})
        self.classifier_activation = classifier_activation
        self.objective = objective
        self.early_stopping_patience = early_stopping_patience
        self.jit_compile = jit_compile
        self.seed = seed
        self.task = get_task(task or TASKS[0])
        self._executions = collections.Counter()

    def declare_hyperparameters(self, hp):
        """Register the space's hyper-parameters (KerasTuner calls this once, before any trial)."""
        self.space.declare(hp)

    def trial_recipe(self, values: dict, epochs: int) -> recipes_lib.Recipe:
        """The recipe of one trial: the base recipe with the trial's recipe values applied.

        Args:
            values: the trial's ``key -> value`` (from ``SearchSpace.declare``).
            epochs: the trial's epochs (what its schedule spans).
        """
        schedule = "lr_ratio" if "lr_ratio" in values else None
        return recipes_lib.with_overrides(
            self.recipe, epochs=epochs, schedule=schedule, lr_ratio=values.get("lr_ratio"),
            augment=values.get("augment"), lr=values.get("lr"), weight_decay=values.get("weight_decay"),
            batch_size=values.get("batch_size"),
        )

    def trial_data(self, recipe: recipes_lib.Recipe):
        """The search's ``Datasets`` with the trial's augmentation and batch size (no data copied)."""
        return dataclasses.replace(self.datasets, augment=recipe.augment, batch_size=recipe.batch_size)

    def trial_model_kwargs(self, values: dict) -> dict:
        """``create_model`` keywords of one trial: the fixed ones plus the space's model keys."""
        return {**self.model_kwargs, **{k: v for k, v in values.items() if k in MODEL_KEYS}}

    @staticmethod
    def _budget(hp, default_epochs: int):
        """``(epochs, initial_epoch)`` of a trial: Hyperband's ``tuner/*`` values, else the default."""
        return int(hp.values.get("tuner/epochs", default_epochs)), int(hp.values.get("tuner/initial_epoch", 0))

    def build(self, hp) -> keras.Model:
        """Create and compile the trial's model.

        The schedule spans the epochs this trial trains (for a Hyperband continuation: the epochs it
        adds to the weights it starts from, so every rung runs the whole lr ratio).
        """
        if self.datasets is None:
            raise RuntimeError("this ResNetHyperModel has no datasets (a distributed chief does not train)")
        values = self.space.declare(hp)
        epochs, initial_epoch = self._budget(hp, self.epochs)
        recipe = self.trial_recipe(values, epochs)
        data = self.trial_data(recipe)
        info = data.info
        key = tuple(sorted((k, str(v)) for k, v in values.items()))
        keras.utils.set_random_seed(self.seed + self._executions[key])
        self._executions[key] += 1
        model = create_model(self.model_name, input_shape=info.image_shape, classes=info.num_classes,
                             classifier_activation=self.classifier_activation, **self.trial_model_kwargs(values))
        return compile_model(model, recipe, (epochs - initial_epoch) * data.steps_per_epoch,
                             jit_compile=self.jit_compile, from_logits=self.classifier_activation is None,
                             task=self.task)

    def fit(self, hp, model, *args, epochs=None, initial_epoch=0, callbacks=(), verbose=0, **kwargs):
        """Train the trial's model (``keras_resnets.training.fit_model``) and return its ``History``.

        Args:
            hp: the trial's ``HyperParameters``.
            model: the model ``build`` returned.
            epochs: last epoch + 1 (Hyperband's budget); default the search's epochs.
            initial_epoch: first epoch (a Hyperband continuation starts after its parent's).
            callbacks: KerasTuner's callbacks (metric reporting, best-epoch checkpoint).
            verbose: Keras verbosity of ``fit``.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss became NaN/inf (the trial is recorded as
                failed and the search goes on).
        """
        values = self.space.declare(hp)
        epochs = self.epochs if epochs is None else int(epochs)
        data = self.trial_data(self.trial_recipe(values, epochs))
        guard = NonFiniteLossGuard()
        trial_callbacks = [guard, *callbacks]
        if self.early_stopping_patience:
            trial_callbacks.append(keras.callbacks.EarlyStopping(
                monitor=self.objective.name, mode=self.objective.direction, patience=self.early_stopping_patience))
        history = fit_model(model, data, epochs, initial_epoch=initial_epoch, callbacks=trial_callbacks,
                            verbose=verbose)
        if guard.diverged_at is not None:
            epoch, batch, loss = guard.diverged_at
            raise keras_tuner.errors.FailedTrialError(
                f"loss became {loss} at epoch {epoch + 1}, batch {batch + 1} with {values}")
        return history
