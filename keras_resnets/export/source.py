"""What is being exported: a run directory or a ``.keras`` file, resolved to a model and its metadata."""
from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path

from keras_resnets.export.errors import ExportError
from keras_resnets.export.variants import CHECKPOINTS
from keras_resnets.runs import RunConfig, RunDir, RunError
from keras_resnets.tasks import TASKS, Task, get_task, task_for_output


@dataclasses.dataclass
class ExportSource:
    """A loaded Keras model plus everything the export needs to know about its inputs and outputs.

    Attributes:
        model: the Keras 3 functional model.
        name: short name used for artifact file names (registry name or file stem).
        model_path: the ``.keras`` file the model was loaded from.
        run: the run's ``RunDir``, or ``None`` for a bare ``.keras`` file.
        config: the run's ``RunConfig`` (``None`` for a bare file).
        input_shape: ``(height, width, channels)``.
        class_names: one label per output class.
        task: the run's ``keras_resnets.tasks.Task`` (classification: output ``(batch, classes)``;
            segmentation: per-pixel output ``(batch, height, width, classes)``); inferred from the
            output shape only for a bare ``.keras`` file.
        mean, std: per-channel normalisation in the 0..255 pixel scale (identity when unknown).
        classifier_activation: ``"softmax"`` (or another activation name) if the model outputs
            probabilities, ``None`` if it outputs logits (per pixel for segmentation).
    """

    model: object
    name: str
    model_path: Path
    run: RunDir | None
    config: RunConfig | None
    input_shape: tuple
    class_names: list
    mean: list
    std: list
    classifier_activation: str | None
    task: Task = get_task(TASKS[0])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def run_dir(self) -> Path | None:
        return Path(self.run.path) if self.run is not None else None

    @property
    def seed(self) -> int:
        """The run's seed (data order, fine-tuning); 0 for a bare file."""
        return self.config.seed if self.config is not None else 0

    @property
    def default_output_dir(self) -> Path:
        """``RUN/export`` for a run, ``<dir of the .keras file>/export`` otherwise."""
        return Path(self.run.export) if self.run is not None else self.model_path.parent / "export"


def load_source(path, checkpoint: str = "best") -> ExportSource:
    """Load a run directory (``config.json`` + ``best.keras``/``final.keras``) or a ``.keras`` file.

    Args:
        path: a run directory or a ``.keras`` file.
        checkpoint: for a run directory, ``"best"`` or ``"final"``; ``best`` falls back to
            ``final`` when the run kept no best model.

    Raises:
        ExportError: the path does not exist, is neither a run directory nor a ``.keras`` file,
            or the file is corrupt or not a Keras model.
    """
    path = Path(path)
    if checkpoint not in CHECKPOINTS:
        raise ExportError(f"checkpoint must be one of {CHECKPOINTS}, got {checkpoint!r}")
    if not path.exists():
        raise ExportError(f"{path} does not exist (expected a run directory or a .keras file)")
    if path.is_dir():
        config_path = path / "config.json"
        if not config_path.is_file():
            raise ExportError(f"{path} is not a run directory: it has no config.json")
        run = RunDir(path)
        model_path = run.model_file(checkpoint)
        if model_path is None:
            names = ["best.keras", "final.keras"] if checkpoint == "best" else ["final.keras"]
            raise ExportError(f"run directory {path} has no {' or '.join(names)}")
        model_path, config = Path(model_path), _read_config(config_path)
    else:
        if path.suffix != ".keras":
            raise ExportError(f"{path} is not a .keras file (suffix {path.suffix!r}); "
                              "pass a run directory or a .keras file")
        model_path, run, config = path, None, None
        sibling = path.parent / "config.json"
        if sibling.is_file():  # e.g. RUN/best.keras: the run's metadata applies
            run, config = RunDir(path.parent), _read_config(sibling)
    model = _load_keras(model_path)
    return _describe(model, model_path, run, config)


def _read_config(path: Path) -> RunConfig:
    """The run's ``RunConfig``; its ``task`` is the export's task."""
    try:
        return RunConfig.load(path)
    except RunError as err:
        raise ExportError(str(err)) from None


def _load_keras(path: Path):
    import keras

    import keras_resnets.layers  # noqa: F401  registers the package's serializable layers

    if not zipfile.is_zipfile(path):
        raise ExportError(f"{path} is corrupt or not a Keras model file (not a .keras zip archive)")
    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as err:  # keras raises many types for foreign/corrupt archives
        raise ExportError(f"cannot load {path} as a Keras model: {type(err).__name__}: {err}") from None
    if not isinstance(model, keras.Model) or len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ExportError(f"{path} must hold a model with one image input and one output")
    return model


def _describe(model, model_path: Path, run: RunDir | None, run_config: RunConfig | None) -> ExportSource:
    config = run_config.to_dict() if run_config is not None else {}
    input_shape = tuple(int(d) for d in model.input_shape[1:]) if None not in model.input_shape[1:] else None
    if input_shape is None or len(input_shape) != 3:
        if config.get("input_shape"):
            input_shape = tuple(int(d) for d in config["input_shape"])
        else:
            raise ExportError(f"{model_path}: the model's input shape {model.input_shape} is not a "
                              "fixed (height, width, channels); export needs a static image size")
    task = _task(model.output_shape, input_shape, model_path, config.get("task"))
    classes = int(model.output_shape[-1])
    class_names = [str(c) for c in config.get("class_names") or range(classes)]
    if len(class_names) != classes:
        raise ExportError(f"config class_names has {len(class_names)} entries, the model outputs {classes}")
    channels = input_shape[-1]
    norm = config.get("normalization") or {}
    mean = [float(v) for v in norm.get("mean", [0.0] * channels)]
    std = [float(v) for v in norm.get("std", [1.0] * channels)]
    if len(mean) != channels or len(std) != channels:
        raise ExportError(f"normalization mean/std need {channels} values, got {mean} / {std}")
    if "classifier_activation" in config:
        activation = config["classifier_activation"]
    else:
        activation = _output_activation(model)
    name = str(config.get("model") or model_path.stem)
    return ExportSource(model=model, name=name, model_path=model_path, run=run, config=run_config,
                        input_shape=input_shape, class_names=class_names, mean=mean, std=std,
                        classifier_activation=activation, task=task)


def _task(output_shape, input_shape: tuple, model_path: Path, run_task: str | None = None) -> Task:
    """The run config's task (a bare ``.keras`` file has none: then the output shape tells), checked
    against the output (``Task.output_shape_fits``)."""
    if run_task is not None:
        task = get_task(run_task)
        if task.output_shape_fits(output_shape, input_shape):
            return task
        raise ExportError(f"{model_path}: the run config's task is {run_task!r} but the model outputs "
                          f"{tuple(output_shape)}")
    task = task_for_output(output_shape, input_shape)
    if task is None:
        raise ExportError(f"{model_path}: export handles classifiers with output (batch, classes) and segmentation "
                          f"models with output (batch, {input_shape[0]}, {input_shape[1]}, classes); "
                          f"this model outputs {tuple(output_shape)}")
    return task


def _output_activation(model) -> str | None:
    """The activation applied by the output layer: its own, or a trailing Activation layer."""
    layer = model.layers[-1]
    activation = layer.get_config().get("activation")
    if isinstance(activation, str) and activation not in ("linear", None):
        return activation
    return None
