"""Step "evaluate and write": final model, test metrics (per task), ``metrics.json``, curves, masks."""
from __future__ import annotations

import os

import keras

from keras_resnets.runs import RunConfig, RunDir
from keras_resnets.tasks import get_task
from keras_resnets.training.artifacts import plot_curves, read_history
from keras_resnets.training.callbacks import save_model_file



# a final model within this much (a fraction) of the constant-prediction score has not learned
NOT_LEARNED_MARGIN = 0.01


def evaluate_task(model: keras.Model, test, task, class_names=()) -> dict:
    """Test metrics of ``model`` for its task (a ``Task`` or its name).

    Classification: ``test_accuracy``, ``test_loss``. Segmentation: ``test_mean_iou``,
    ``test_pixel_accuracy``, ``test_loss`` and ``test_per_class_iou`` (class name -> IoU, ``None``
    for a class seen in neither labels nor predictions): the task's ``test_extras``. Both:
    ``test_<metric>_constant_prediction``, the score of predicting the test split's most frequent
    class everywhere (one pass over the test labels).
    """
    task = get_task(task)
    values = model.evaluate(test, verbose=0, return_dict=True)
    classes = int(model.output_shape[-1])
    counts = sum((task.label_counts(labels, classes) for _, labels in test), start=0)
    return {**{f"test_{k}": float(v) for k, v in values.items()},
            **task.test_extras(model, test, class_names),
            f"test_{task.metric}_constant_prediction": round(task.constant_baseline(counts), 4)}


def not_learned_note(metrics: dict, task) -> str | None:
    """One line when the final model scores no better than predicting one class everywhere."""
    task = get_task(task)
    score, baseline = metrics.get(f"test_{task.metric}"), metrics.get(f"test_{task.metric}_constant_prediction")
    if score is None or baseline is None or score > baseline + NOT_LEARNED_MARGIN:
        return None
    return (f"note: test {task.metric} {score:.4f} is no better than predicting the most frequent class for every "
            f"{'pixel' if task.per_pixel else 'image'} ({baseline:.4f}): the model has not learned yet "
            f"(more epochs, or another learning rate)")


def _best_model_metrics(run: RunDir, test, config: RunConfig) -> dict:
    if not os.path.exists(run.best_model):
        return {}
    import keras_resnets.layers  # noqa: F401  registers the package's layers for loading

    task = get_task(config.task)
    best = keras.saving.load_model(run.best_model, compile=False)
    best.compile(loss=task.loss(config.classifier_activation is None), metrics=task.metrics(config.classes))
    values = best.evaluate(test, verbose=0, return_dict=True)
    return {f"best_model_test_{task.metric}": float(values[task.metric])}


def evaluate_and_write(net: keras.Model, data, run: RunDir, config: RunConfig, *, initial_epoch: int,
                       seconds: float) -> dict:
    """Save ``final.keras``, evaluate on the test split, write ``metrics.json``, ``curves.png`` and,
    for segmentation, ``predictions.png``.

    Returns:
        The content of ``metrics.json``.
    """
    task = get_task(config.task)
    save_model_file(net, run.final_model)
    plot_curves(run.history, run.curves, metric=task.metric)
    history = read_history(run.history)
    epochs_run = config.epochs - initial_epoch
    metrics = {
        "status": "completed", "task": config.task, "model": config.model, "dataset": config.dataset,
        "params": int(net.count_params()), "epochs": config.epochs, "epochs_this_session": epochs_run,
        "resumed_from_epoch": initial_epoch,
        **evaluate_task(net, data.test, task, config.class_names),
        f"best_{task.monitor}": max(history.get(task.monitor, []), default=None),
        **_best_model_metrics(run, data.test, config),
        f"final_train_{task.metric}": (history.get(task.metric) or [None])[-1],
        "train_seconds": round(seconds, 2),
        "train_images_per_second": round(epochs_run * data.info.num_train / seconds, 1) if epochs_run else None,
        "jit_compile": config.jit_compile, "precision": config.precision,
    }
    task.write_predictions(net, data.test, data.info, run.predictions, config.class_names)
    run.write_metrics(metrics)
    return metrics
