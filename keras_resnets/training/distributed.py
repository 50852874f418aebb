"""Data-parallel training through the engines Keras already trusts; no collectives of our own.

Two modes, chosen with ``train(..., distribute=MODE)`` or ``keras-resnets train --distribute MODE``:

``data_parallel`` (``KERAS_BACKEND=jax``)
    ``keras.distribution.DataParallel`` over every device of every process: the global batch is
    split along its first axis, the weights are replicated and XLA inserts the all-reduces. One
    process uses all of its machine's devices; several processes (machines) join through
    ``jax.distributed`` as described by Keras' standard environment variables::

        KERAS_DISTRIBUTION_JOB_ADDRESSES=10.0.0.1:1234   # the coordinator (process 0), host:port
        KERAS_DISTRIBUTION_NUM_PROCESSES=2
        KERAS_DISTRIBUTION_PROCESS_ID=0                 # 0 .. NUM_PROCESSES-1, one per process

    Batch statistics (BatchNormalization) are computed over the global batch, so a run on N
    processes computes what one process computes with the same global batch.

``mirrored`` (``KERAS_BACKEND=tensorflow``)
    ``tf.distribute.MirroredStrategy`` over one machine's GPUs. Several TensorFlow workers
    (``TF_CONFIG``) are refused: Keras 3 ``fit`` fails under ``MultiWorkerMirroredStrategy``
    (keras-team/keras#20585); use ``data_parallel`` to train on several machines.

Bad clusters fail in bounded time: the worker count, process id and global batch are validated up
front (``ValueError``), and a cluster that does not form within ``KERAS_RESNETS_CLUSTER_TIMEOUT``
seconds (default 300: a peer is unreachable or fewer processes started than announced) ends the
process with a one-line error instead of waiting forever.
"""
from __future__ import annotations

import dataclasses
import os
import sys
import threading

try:
    import tensorflow as tf
except ImportError:  # JAX-only installs (keras_resnets.data.arrays); tf.data pipelines need it
    tf = None

from keras_resnets.data import Datasets
from keras_resnets.data.arrays import ArrayDatasets, require_tensorflow
from keras_resnets.training.listen import split_host_port, warn_if_public

DISTRIBUTE_MODES = ("data_parallel", "mirrored")
REQUIRED_BACKEND = {"data_parallel": "jax", "mirrored": "tensorflow"}

ENV_JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
ENV_CLUSTER_TIMEOUT = "KERAS_RESNETS_CLUSTER_TIMEOUT"
DEFAULT_CLUSTER_TIMEOUT_S = 300
CLUSTER_FAILED_EXIT_CODE = 3


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """Where this process stands in a multi-process cluster.

    Attributes:
        coordinator: ``host:port`` of process 0 (``None`` for a single process).
        num_processes: processes in the cluster.
        process_id: this process, ``0 .. num_processes - 1``; process 0 is the chief.
        timeout_s: seconds the cluster may take to form before this process gives up.
    """

    coordinator: str | None
    num_processes: int
    process_id: int
    timeout_s: int

    @property
    def is_chief(self) -> bool:
        """Process 0 writes the run directory; the others write ``<run_name>-worker<id>``."""
        return self.process_id == 0


def _int_from_env(environ, name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or text.strip() == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{name} must be an integer; got {text!r}") from None


def cluster_from_env(environ=None) -> ClusterSpec:
    """Read and validate the cluster from Keras' ``KERAS_DISTRIBUTION_*`` environment variables.

    Args:
        environ: the environment to read (default ``os.environ``).

    Returns:
        The ``ClusterSpec``; one process (no coordinator) when the variables are unset.

    Raises:
        ValueError: a non-integer count or id, ``NUM_PROCESSES < 1``, a process id outside
            ``0 .. NUM_PROCESSES-1``, a list of job addresses whose length is not ``NUM_PROCESSES``,
            a cluster without a coordinator address, or a non-positive timeout.
    """
    environ = os.environ if environ is None else environ
    num_processes = _int_from_env(environ, ENV_NUM_PROCESSES, 1)
    process_id = _int_from_env(environ, ENV_PROCESS_ID, 0)
    timeout_s = _int_from_env(environ, ENV_CLUSTER_TIMEOUT, DEFAULT_CLUSTER_TIMEOUT_S)
    if num_processes < 1:
        raise ValueError(f"{ENV_NUM_PROCESSES} must be >= 1; got {num_processes}")
    if not 0 <= process_id < num_processes:
        raise ValueError(f"{ENV_PROCESS_ID} must be in 0..{num_processes - 1} "
                         f"({ENV_NUM_PROCESSES}={num_processes}); got {process_id}")
    if timeout_s <= 0:
        raise ValueError(f"{ENV_CLUSTER_TIMEOUT} must be a positive number of seconds; got {timeout_s}")
    addresses = [a.strip() for a in environ.get(ENV_JOB_ADDRESSES, "").split(",") if a.strip()]
    if len(addresses) > 1 and len(addresses) != num_processes:
        raise ValueError(f"{ENV_JOB_ADDRESSES} lists {len(addresses)} jobs ({', '.join(addresses)}) but "
                         f"{ENV_NUM_PROCESSES}={num_processes}; list one address per process or only the "
                         f"coordinator's")
    if num_processes > 1 and not addresses:
        raise ValueError(f"{ENV_NUM_PROCESSES}={num_processes} needs {ENV_JOB_ADDRESSES}=<host:port of "
                         f"process 0>")
    for address in addresses:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError(f"{ENV_JOB_ADDRESSES} entries must be host:port; got {address!r}")
    return ClusterSpec(coordinator=addresses[0] if addresses else None, num_processes=num_processes,
                       process_id=process_id, timeout_s=timeout_s)


def validate_global_batch(batch_size: int, num_replicas: int, what: str = "replicas") -> None:
    """Check that the global batch splits evenly over ``num_replicas``.

    Args:
        batch_size: the global batch (the sum over all replicas of one step).
        num_replicas: devices (or processes) sharing each batch.
        what: what ``num_replicas`` counts, for the message.

    Raises:
        ValueError: ``batch_size`` is not a multiple of ``num_replicas``.
    """
    if batch_size % num_replicas:
        lower = batch_size // num_replicas * num_replicas
        hint = f"{lower} or {lower + num_replicas}" if lower else f"{num_replicas}"
        raise ValueError(f"global batch_size {batch_size} is not divisible by the {num_replicas} {what}; "
                         f"use a multiple of {num_replicas}, e.g. {hint}")


def initialize_cluster(cluster: ClusterSpec) -> None:
    """Join the ``jax.distributed`` cluster, giving up after ``cluster.timeout_s`` seconds.

    This is what ``keras.distribution.initialize`` does, plus a deadline: JAX itself aborts the
    process with a bare ``DEADLINE_EXCEEDED`` when peers do not register, so a watchdog a little
    earlier ends the process with a message that names the cluster instead. On CPU the collectives
    run over Gloo (TCP).

    Args:
        cluster: the cluster to join (``num_processes > 1``).
    """
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    failure = (
        f"keras-resnets: error: the cluster of {cluster.num_processes} processes at coordinator "
        f"{cluster.coordinator} did not form within {cluster.timeout_s} s (this is process "
        f"{cluster.process_id}); check that the coordinator is reachable from every machine and that "
        f"every process was started with the same {ENV_NUM_PROCESSES}"
    )

    def give_up():
        print(failure, file=sys.stderr, flush=True)
        os._exit(CLUSTER_FAILED_EXIT_CODE)

    watchdog = threading.Timer(cluster.timeout_s, give_up)
    watchdog.daemon = True
    watchdog.start()
    # JAX's default binds the coordinator to every interface ([::]:port); bind it to the address the
    # cluster was given, and say so when that address is public (the service has no authentication).
    bind = {}
    if cluster.process_id == 0:
        host, port = split_host_port(cluster.coordinator)
        warn_if_public(cluster.coordinator, "the JAX coordination service")
        bind = {"coordinator_bind_address": f"[{host}]:{port}" if ":" in host else cluster.coordinator}
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.coordinator,
            **bind,
            num_processes=cluster.num_processes,
            process_id=cluster.process_id,
            initialization_timeout=cluster.timeout_s + 30,  # JAX's own abort only as a last resort
        )
    finally:
        watchdog.cancel()
    if jax.process_count() != cluster.num_processes:
        raise RuntimeError(f"joined a cluster of {jax.process_count()} processes; expected "
                           f"{cluster.num_processes} ({ENV_NUM_PROCESSES})")


def train_distributed(train_fn, mode: str, *, batch_size: int, run_name: str, strategy=None):
    """Run ``train_fn(run_name, strategy)`` data-parallel, as ``mode`` says.

    Called by ``keras_resnets.training.train`` when ``distribute`` is given. With ``data_parallel``
    every process of the cluster runs this with the same arguments; process 0 trains ``run_name``,
    process ``i > 0`` writes ``<run_name>-worker<i>`` next to it.

    Args:
        train_fn: ``train_fn(run_name, strategy=None)`` trains one process's part (``train`` with
            its arguments, the run name and the strategy given here).
        mode: one of ``DISTRIBUTE_MODES``.
        batch_size: the global batch, checked against the replicas.
        run_name: the run's name (process 0's).
        strategy: must be ``None`` (``strategy`` and ``distribute`` exclude each other).

    Returns:
        What ``train_fn`` returns.

    Raises:
        ValueError: an unknown mode, the wrong backend for it, both ``strategy`` and ``distribute``,
            a bad cluster description, or a global batch not divisible by the replicas.
    """
    import keras

    if mode not in DISTRIBUTE_MODES:
        raise ValueError(f"unknown distribute mode {mode!r}; allowed: {', '.join(DISTRIBUTE_MODES)}")
    backend = keras.backend.backend()
    if backend != REQUIRED_BACKEND[mode]:
        raise ValueError(f"distribute={mode!r} needs KERAS_BACKEND={REQUIRED_BACKEND[mode]}; the backend is "
                         f"{backend!r}")
    if strategy is not None:
        raise ValueError("pass either strategy or distribute, not both")

    if mode == "mirrored":
        if os.environ.get("TF_CONFIG"):
            raise ValueError("distribute='mirrored' trains on one machine but TF_CONFIG describes a cluster; "
                             "Keras 3 fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585): "
                             "use KERAS_BACKEND=jax with distribute='data_parallel' for several machines")
        strategy = tf.distribute.MirroredStrategy()
        validate_global_batch(batch_size, strategy.num_replicas_in_sync)
        return train_fn(run_name, strategy=strategy)

    import jax

    cluster = cluster_from_env()
    validate_global_batch(batch_size, cluster.num_processes, what="processes")
    if cluster.num_processes > 1:
        initialize_cluster(cluster)
    devices = jax.devices()
    validate_global_batch(batch_size, len(devices), what="devices of the cluster")
    if not cluster.is_chief:
        run_name = f"{run_name}-worker{cluster.process_id}"
    with keras.distribution.DataParallel(devices=devices).scope():
        return train_fn(run_name)


def shard_ready(data):
    """Adapt a ``Datasets`` to the active ``keras.distribution`` so that every replica gets equal work.

    Without an active distribution spanning several devices, ``data`` is returned as is. Otherwise
    every split keeps only full batches: each epoch's last, partial training batch is dropped (as
    are up to ``batch_size - 1`` validation and test images), since its shards could not be equal.
    Padding instead would bias the metrics: ``compile_model``'s accuracy ignores sample weights.

    Args:
        data: a ``keras_resnets.data.Datasets``.

    Raises:
        ValueError: a non-empty split smaller than one batch.
    """
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None or int(distribution.device_mesh.devices.size) <= 1:
        return data
    if hasattr(data, "shard") and hasattr(data, "full_batches"):  # streaming: each process reads its files
        return _per_process_files(data, distribution)
    if isinstance(data, ArrayDatasets):  # numpy batches (no TensorFlow): one process, its devices
        if cluster_from_env().num_processes > 1:
            require_tensorflow("data_parallel training on several processes")
        return data.full_batches()
    for split, count in (("training", data.info.num_train), ("validation", data.info.num_validation),
                         ("test", data.info.num_test)):
        if 0 < count < data.batch_size:
            raise ValueError(f"batch_size {data.batch_size} is larger than the {count} {split} images; "
                             f"distributed training uses full batches only, so use a smaller batch")
    fields = {f.name: getattr(data, f.name) for f in dataclasses.fields(data)}
    fields["validation"] = _full_batches(data.validation, data.batch_size)
    fields["test"] = _full_batches(data.test, data.batch_size)
    return _FullBatchDatasets(**fields)


def _per_process_files(data, distribution):
    """A streaming ``Datasets`` reads only this process's shard of the files (``data.shard``);
    Keras is told not to shard the already per-process batches again."""
    cluster = cluster_from_env()
    if cluster.num_processes == 1:
        return data.full_batches()
    distribution.auto_shard_dataset = False
    return data.shard(cluster.num_processes, cluster.process_id)


def _full_batches(dataset: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """The same samples re-batched into full batches only; the batch op comes last so that
    keras.distribution can read the batch size it splits by."""
    return dataset.unbatch().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


class _FullBatchDatasets(Datasets):
    """A ``Datasets`` whose training epochs hold only full batches (``steps_per_epoch`` rounds down)."""

    @property
    def steps_per_epoch(self) -> int:
        return len(self._train_labels) // self.batch_size

    def train(self, epochs: int, initial_epoch: int = 0) -> tf.data.Dataset:
        batch_size = self.batch_size
        full = super().train(epochs, initial_epoch).filter(lambda x, y: tf.shape(y)[0] == batch_size)
        return _full_batches(full, batch_size)
