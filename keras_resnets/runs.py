"""A run and its directory: ``RunConfig`` owns ``config.json``, ``RunDir`` owns the layout.

Plain Python (no Keras, no TensorFlow), so every part — train, tune, export, the CLIs, the
examples and the tests — reads and writes runs the same way. The layout is the one of
docs/CONTRACTS.md; what is atomic and what resume does is in docs/guarantees.md.

* ``RunConfig``: a dataclass with a schema version. ``RunConfig.load`` refuses an unknown key, a
  missing required key or a newer schema with one line naming it; ``save`` is the only writer of
  ``config.json`` (written atomically: temp file, then rename).
* ``RunDir``: the paths of one run, and its life cycle. ``RunDir.create`` builds the directory under a
  temporary name and renames it into place, so a run exists completely or not at all, and of two
  processes creating the same run exactly one wins. A running run holds an exclusive lock, so a second
  process resuming it is refused. Every artifact is written to a temporary file and renamed, so a
  failed write (disk full, permissions) leaves the previous version intact.
"""
from __future__ import annotations

import dataclasses
import errno
import json
import os
import time
from dataclasses import dataclass, field

from keras_resnets.files import RunWriteError, atomic_write, remove_quietly, write_json  # noqa: F401  (re-exported)
from keras_resnets.tasks import TASKS

SCHEMA_VERSION = 1
FREEZE_MODES = ("none", "backbone")
# Keys that may differ between a run and its resumption (they describe the machine, not the run).
MACHINE_KEYS = ("keras_resnets_version", "backend", "jit_compile", "data_dir")
_LOCK = ".lock"


class RunError(ValueError):
    """A run cannot be created, opened or resumed as asked (the message is one line)."""


class RunInUseError(RunError):
    """Another process holds the run (creating or training it)."""


@dataclass
class RunConfig:
    """Everything needed to rebuild a run's model and data: the content of ``config.json``.

    Required: ``model`` (registry name), ``dataset``, ``input_shape`` [h, w, c], ``classes``,
    ``class_names``, ``normalization`` {``mean``, ``std``} (0..255 scale). The recipe's fields
    (``epochs``, ``batch_size``, ``lr``, ...) are top-level keys; ``task`` is ``classification`` or
    ``segmentation``. ``steps_per_epoch``/``total_steps`` are derived from the data.
    """

    model: str
    dataset: str
    input_shape: list
    classes: int
    class_names: list
    normalization: dict
    task: str = TASKS[0]
    model_kwargs: dict = field(default_factory=dict)
    dataset_kwargs: dict = field(default_factory=dict)
    data_dir: str | None = None
    image_size: list | None = None
    channels: int | None = None
    validation_split: float = 0.1
    classifier_activation: str | None = "softmax"
    recipe: str | None = None
    epochs: int = 1
    iterations: int | None = None
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    weight_decay_mode: str = "l2"
    schedule: str = "constant"
    lr_ratio: str | None = None
    warmup_steps: int = 0
    augment: str = "none"
    expand: int = 0
    optimizer: str = "sgd"
    init_from: str | None = None
    freeze: str = "none"
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    seed: int = 0
    deterministic: bool = False
    precision: str = "float32"
    jit_compile: bool = False
    backend: str | None = None
    keras_resnets_version: str = "unknown"
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        self.validate()

    @classmethod
    def keys(cls) -> tuple:
        """Every key of ``config.json``."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def required_keys(cls) -> tuple:
        return tuple(f.name for f in dataclasses.fields(cls)
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)

    def validate(self) -> None:
        """Check the values' types and choices.

        Raises:
            RunError: one line naming the key, its value and what is allowed.
        """
        if self.task not in TASKS:
            raise RunError(f"config task {self.task!r} is unknown; allowed: {', '.join(TASKS)}")
        if self.freeze not in FREEZE_MODES:
            raise RunError(f"config freeze {self.freeze!r} is unknown; allowed: {', '.join(FREEZE_MODES)}")
        if not isinstance(self.model, str) or not self.model:
            raise RunError(f"config model must be a registry name; got {self.model!r}")
        if not isinstance(self.input_shape, (list, tuple)) or len(self.input_shape) != 3:
            raise RunError(f"config input_shape must be [height, width, channels]; got {self.input_shape!r}")
        if isinstance(self.classes, bool) or not isinstance(self.classes, int) or self.classes < 1:
            raise RunError(f"config classes must be a positive integer; got {self.classes!r}")
        if len(self.class_names) != self.classes:
            raise RunError(f"config class_names has {len(self.class_names)} names for {self.classes} classes")
        if not isinstance(self.normalization, dict) or set(self.normalization) != {"mean", "std"}:
            raise RunError(f"config normalization must be {{'mean': [...], 'std': [...]}}; got {self.normalization!r}")
        if self.schema_version > SCHEMA_VERSION:
            raise RunError(f"config schema_version {self.schema_version} is newer than this keras_resnets "
                           f"understands ({SCHEMA_VERSION}); upgrade keras_resnets to read this run")

    def to_dict(self) -> dict:
        """JSON-ready dict, lists instead of tuples."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "RunConfig":
        """Build from a dict (``config.json``'s content).

        Raises:
            RunError: not an object, an unknown key, a missing required key, a newer schema.
        """
        if not isinstance(data, dict):
            raise RunError(f"{source} must hold a JSON object; got {type(data).__name__}")
        unknown = sorted(set(data) - set(cls.keys()))
        if unknown:
            raise RunError(f"{source} has unknown key {unknown[0]!r}; allowed keys: {', '.join(cls.keys())}")
        missing = [k for k in cls.required_keys() if k not in data]
        if missing:
            raise RunError(f"{source} lacks the required key {missing[0]!r}")
        version = data.get("schema_version", SCHEMA_VERSION)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise RunError(f"{source} has schema_version {version}, newer than this keras_resnets understands "
                           f"({SCHEMA_VERSION}); upgrade keras_resnets to read this run")
        try:
            return cls(**data)
        except TypeError as err:
            raise RunError(f"{source}: {err}") from None

    @classmethod
    def load(cls, path) -> "RunConfig":
        """Read ``config.json`` (a file or the run directory holding it).

        Raises:
            RunError: the file is missing, not JSON, or not a valid config.
        """
        path = str(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise RunError(f"{path} does not exist (not a run directory)") from None
        except (OSError, json.JSONDecodeError) as err:
            raise RunError(f"cannot read run config {path}: {err}") from None
        return cls.from_dict(data, source=path)

    def save(self, path) -> None:
        """Write ``config.json`` (a file path or the run directory) atomically: the only writer of it."""
        path = str(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        write_json(path, self.to_dict())

    def replace(self, **changes) -> "RunConfig":
        """A validated copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


def describe_differences(differences: list, limit: int = 4) -> str:
    """``key (was X, now Y), ...`` for at most ``limit`` keys, values shortened to one line."""
    def short(value):
        text = json.dumps(value, default=str)
        return text if len(text) <= 40 else text[:37] + "..."

    parts = [f"{key} (was {short(old)}, now {short(new)})" for key, old, new in differences[:limit]]
    more = len(differences) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def json_value(value):
    """``value`` as JSON stores it (tuples become lists)."""
    return json.loads(json.dumps(value, default=str))


def check_resumable(path: str, stored: dict, requested: dict) -> None:
    """Refuse to resume the run (or search) at ``path`` when a requested value differs from the stored one.

    The one comparison of train's and tune's resume: values are compared as JSON stores them.

    Raises:
        RunError: naming the keys that differ, with both values.
    """
    differences = [(key, stored.get(key), value) for key, value in requested.items()
                   if json_value(stored.get(key)) != json_value(value)]
    if differences:
        raise RunError(f"cannot resume {path!r}: its config differs in {describe_differences(differences)}; "
                       f"resume with the same settings or start a new run (--run-name)")


def timestamp() -> str:
    """``YYYYmmdd-HHMMSS``: the time part of every default run (and analysis) name."""
    return time.strftime("%Y%m%d-%H%M%S")


def default_run_name(model: str, dataset: str, prefix: str = "") -> str:
    """``<prefix><model>-<dataset>-<YYYYmmdd-HHMMSS>`` (dataset paths reduced to their last component)."""
    dataset = os.path.basename(os.path.normpath(str(dataset))) or "data"
    return f"{prefix}{model}-{dataset.replace('/', '_')}-{timestamp()}"


@dataclass(frozen=True)
class DataOptions:
    """Which data a run reads and how: the data keywords ``train`` and ``tune`` share.

    Attributes:
        dataset: a name of the dataset registry (``keras_resnets.data.registry``) or a TFDS name.
        dataset_kwargs: options of the dataset's loader (``DatasetEntry.options``).
        data_dir, image_size, channels, validation_split, download: as for ``registry.load``.
    """

    dataset: str = "digits"
    dataset_kwargs: dict = field(default_factory=dict)
    data_dir: str | None = None
    image_size: tuple | None = None
    channels: int | None = None
    validation_split: float = 0.1
    download: bool = False

    def __post_init__(self):
        object.__setattr__(self, "dataset_kwargs", dict(self.dataset_kwargs or {}))

    def config_values(self) -> dict:
        """The ``config.json`` (and ``search.json``) values these options fix."""
        return {"dataset": self.dataset, "dataset_kwargs": dict(self.dataset_kwargs), "data_dir": self.data_dir,
                "image_size": list(self.image_size) if self.image_size else None, "channels": self.channels,
                "validation_split": self.validation_split}

    def load(self, *, batch_size: int, augment: str, seed: int, expand: int = 0):
        """The dataset's ``Datasets``, through the registry (the one place a dataset name is resolved)."""
        from keras_resnets.data import registry

        return registry.load(self.dataset, self.dataset_kwargs, data_dir=self.data_dir, batch_size=batch_size,
                             augment=augment, expand=expand, image_size=self.image_size, channels=self.channels,
                             validation_split=self.validation_split, seed=seed, download=self.download)


@dataclass(frozen=True)
class RunOptions:
    """Where a run (or a search) lives and how it starts: the run keywords ``train`` and ``tune`` share.

    Attributes:
        runs_dir: parent folder of run directories.
        run_name: the run's folder; ``None``: ``<model>-<dataset>-<time>``.
        resume: continue the run (or search) of that name.
        seed: seed of the weights, the data order and the augmentation (and the tuner's sampling).
        xla: ``auto``, ``on``, ``off`` or a bool (``keras_resnets.training.resolve_jit_compile``).
    """

    runs_dir: str = "runs"
    run_name: str | None = None
    resume: bool = False
    seed: int = 0
    xla: object = "auto"

    def name(self, model: str, dataset: str, prefix: str = "") -> str:
        """``run_name``, or the default name of a run of ``model`` on ``dataset``."""
        return self.run_name or default_run_name(model, dataset, prefix)

    def named(self, run_name: str) -> "RunOptions":
        return dataclasses.replace(self, run_name=run_name)


@dataclass
class RunDir:
    """The directory of one run (layout: docs/CONTRACTS.md) and its lock.

    Build one with ``RunDir.create`` (a new run) or ``RunDir.open`` (an existing run); a bare
    ``RunDir(path)`` only names the paths.
    """

    path: str
    _lock_file: object = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        self.path = str(self.path)

    def _join(self, *parts) -> str:
        return os.path.join(self.path, *parts)

    run_dir = property(lambda self: self.path)
    config = property(lambda self: self._join("config.json"))
    checkpoints = property(lambda self: self._join("checkpoints"))
    backup = property(lambda self: self._join("checkpoints", "backup"),
                      doc="``BackupAndRestore`` state (weights + optimizer + epoch): what resuming reads.")
    last_weights = property(lambda self: self._join("checkpoints", "last.weights.h5"))
    best_model = property(lambda self: self._join("best.keras"))
    final_model = property(lambda self: self._join("final.keras"))
    history = property(lambda self: self._join("history.csv"))
    tensorboard = property(lambda self: self._join("tensorboard"))
    metrics = property(lambda self: self._join("metrics.json"))
    curves = property(lambda self: self._join("curves.png"))
    predictions = property(lambda self: self._join("predictions.png"),
                           doc="Segmentation: predicted masks next to ground truth for held-out images.")
    export = property(lambda self: self._join("export"))
    tune = property(lambda self: self._join("tune"))

    def model_file(self, checkpoint: str = "best") -> str | None:
        """The saved model ``checkpoint`` names (``best`` or ``final``); ``best`` falls back to
        ``final.keras`` when the run kept no best model. ``None`` when there is none."""
        candidates = [self.best_model, self.final_model] if checkpoint == "best" else [self.final_model]
        return next((path for path in candidates if os.path.isfile(path)), None)

    ARTIFACTS = ("run_dir", "config", "checkpoints", "best_model", "final_model", "history", "tensorboard",
                 "metrics", "curves")

    def to_dict(self) -> dict:
        """Name -> path of every training artifact (``predictions`` too once written)."""
        paths = {name: getattr(self, name) for name in self.ARTIFACTS}
        if os.path.exists(self.predictions):
            paths["predictions"] = self.predictions
        return paths

    def exists(self) -> bool:
        """Whether a run lives here (its ``config.json`` exists)."""
        return os.path.isfile(self.config)

    def read_config(self) -> RunConfig:
        return RunConfig.load(self.config)

    def write_config(self, config: RunConfig) -> None:
        config.save(self.config)

    def read_metrics(self) -> dict:
        """``metrics.json`` (empty dict when the run wrote none yet)."""
        try:
            with open(self.metrics) as f:
                return json.load(f)
        except (OSError, json.JSONDecodeError):
            return {}

    def write_metrics(self, metrics: dict) -> None:
        write_json(self.metrics, metrics)

    def is_completed(self) -> bool:
        """The run finished training: ``metrics.json`` says completed and ``final.keras`` exists."""
        return self.read_metrics().get("status") == "completed" and os.path.isfile(self.final_model)

    # --- life cycle -----------------------------------------------------------------------------
    @staticmethod
    def check_free(runs_dir: str, run_name: str) -> "RunDir":
        """Refuse early (before any work) a run name that is taken.

        Raises:
            RunError: ``runs_dir/run_name`` exists and is not empty.
        """
        run = RunDir(os.path.join(runs_dir, run_name))
        if os.path.exists(run.path) and (not os.path.isdir(run.path) or os.listdir(run.path)):
            raise RunError(f"run directory {run.path!r} already exists; pass resume=True (--resume) to continue "
                           f"it or choose another run name (--run-name)")
        return run

    @classmethod
    def create(cls, runs_dir: str, run_name: str, config: RunConfig) -> "RunDir":
        """Create the run atomically and lock it: a temporary folder with ``config.json`` and
        ``checkpoints/``, renamed to ``runs_dir/run_name``.

        Raises:
            RunError: the name is taken (also when another process created it first).
            RunWriteError: ``runs_dir`` cannot be written.
        """
        run = cls(os.path.join(runs_dir, run_name))
        if run._held_by_another_process():  # appeared since the caller's early check_free: a racing creator
            raise RunError(f"run directory {run.path!r} already exists (created by another process just now); "
                           f"choose another run name (--run-name)")
        cls.check_free(runs_dir, run_name)
        tmp = os.path.join(runs_dir, f".{run_name}.creating-{os.getpid()}")
        staged = RunDir(tmp)
        remove_quietly(tmp)  # left by a killed process of the same id
        try:
            os.makedirs(staged.checkpoints)
            staged._acquire_lock()
            config.save(staged.config)
            os.rename(tmp, run.path)  # fails when another process renamed its run into place first
        except OSError as err:
            staged.release()
            remove_quietly(tmp)
            if err.errno in (errno.EEXIST, errno.ENOTEMPTY) and os.path.exists(run.path):
                raise RunError(f"run directory {run.path!r} already exists (created by another process just now); "
                               f"choose another run name (--run-name)") from None
            if isinstance(err, RunWriteError):
                raise
            raise RunWriteError(f"cannot create run directory {run.path!r}: {err.strerror or err}", err.errno) from None
        run._lock_file = staged._lock_file
        return run

    @classmethod
    def open(cls, runs_dir: str, run_name: str) -> "RunDir":
        """Open an existing run to resume it, and lock it.

        Raises:
            RunError: there is no run of that name, or another process holds it.
        """
        run = cls(os.path.join(runs_dir, run_name))
        if not run.exists():
            raise RunError(f"cannot resume: {run.config!r} does not exist (no run named {run_name!r})")
        run._acquire_lock()
        return run

    def _held_by_another_process(self) -> bool:
        """Whether a process (another open of the lock, this one's included) holds this run's lock now."""
        import fcntl

        try:
            lock = open(self._join(_LOCK))
        except OSError:
            return False
        with lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return True
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        return False

    def _acquire_lock(self) -> None:
        import fcntl

        lock = open(self._join(_LOCK), "a+")
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            lock.close()
            raise RunInUseError(f"run {self.path!r} is in use by another process; wait for it to finish") from None
        self._lock_file = lock

    def release(self) -> None:
        """Release the run's lock (the process's exit releases it too)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None
