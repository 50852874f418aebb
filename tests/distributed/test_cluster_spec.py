"""Cluster descriptions and global batches are validated before any process waits on another."""
import types

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only  # keras_resnets.training.distributed builds tf.data pipelines

CLUSTER = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
           "KERAS_DISTRIBUTION_PROCESS_ID": "1"}


def test_cluster_from_env_reads_keras_variables():
    from keras_resnets.training.distributed import ClusterSpec, cluster_from_env

    assert cluster_from_env({}) == ClusterSpec(None, 1, 0, 300)
    spec = cluster_from_env({**CLUSTER, "KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234,10.0.0.2:2345",
                             "KERAS_RESNETS_CLUSTER_TIMEOUT": "60"})
    assert spec == ClusterSpec("10.0.0.1:1234", 2, 1, 60) and not spec.is_chief


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"KERAS_DISTRIBUTION_PROCESS_ID": "2"}, r"PROCESS_ID must be in 0..1 \(KERAS_DISTRIBUTION_NUM_PROCESSES=2\); got 2"),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "0"}, r"NUM_PROCESSES must be >= 1; got 0"),
        ({"KERAS_DISTRIBUTION_NUM_PROCESSES": "two"}, r"NUM_PROCESSES must be an integer; got 'two'"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "a:1,b:2,c:3"}, r"lists 3 jobs \(a:1, b:2, c:3\) but .*NUM_PROCESSES=2"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": ""}, r"NUM_PROCESSES=2 needs KERAS_DISTRIBUTION_JOB_ADDRESSES"),
        ({"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1"}, r"must be host:port; got '10.0.0.1'"),
        ({"KERAS_RESNETS_CLUSTER_TIMEOUT": "0"}, r"CLUSTER_TIMEOUT must be a positive number of seconds; got 0"),
    ],
)
def test_bad_clusters_name_the_bad_value(overrides, pattern):
    from keras_resnets.training.distributed import cluster_from_env

    with pytest.raises(ValueError, match=pattern):
        cluster_from_env({**CLUSTER, **overrides})


def test_global_batch_must_split_evenly():
    from keras_resnets.training.distributed import validate_global_batch

    validate_global_batch(256, 8)
    with pytest.raises(ValueError, match=r"global batch_size 100 is not divisible by the 8 devices; .* 96 or 104"):
        validate_global_batch(100, 8, what="devices")
    with pytest.raises(ValueError, match=r"batch_size 3 is not divisible by the 4 replicas; .* e.g. 4"):
        validate_global_batch(3, 4)


@pytest.mark.parametrize(
    "distribute, pattern",
    [
        ("horovod", r"unknown distribute mode 'horovod'; allowed: data_parallel, mirrored"),
        ("data_parallel", r"distribute='data_parallel' needs KERAS_BACKEND=jax; the backend is 'tensorflow'"),
    ],
)
def test_train_rejects_bad_modes_before_any_work(tmp_path, distribute, pattern):
    from keras_resnets.training import train

    with pytest.raises(ValueError, match=pattern):
        train("cifar_resnet20", "digits", epochs=1, distribute=distribute, runs_dir=str(tmp_path))
    assert not list(tmp_path.iterdir())


def test_a_multi_device_distribution_gets_full_batches_only(monkeypatch):
    import keras
    from tensorflow.python.data.experimental.ops.distribute import compute_batch_size

    from keras_resnets.data import load_dataset
    from keras_resnets.training.distributed import shard_ready

    data = load_dataset("digits", batch_size=100, image_size=(8, 8))
    assert shard_ready(data) is data  # no distribution: unchanged

    two_devices = types.SimpleNamespace(device_mesh=types.SimpleNamespace(devices=np.array(["cpu:0", "cpu:1"])))
    monkeypatch.setattr(keras.distribution, "distribution", lambda: two_devices)
    ready = shard_ready(data)
    assert ready.steps_per_epoch == data.info.num_train // 100
    batches = list(ready.train(2))
    assert len(batches) == 2 * ready.steps_per_epoch and all(len(y) == 100 for _, y in batches)
    first_epoch = np.concatenate([y for _, y in batches[:ready.steps_per_epoch]])
    assert len(np.unique(first_epoch)) == 10  # one epoch's batches, not the same batch repeated
    for split, count in ((ready.validation, data.info.num_validation), (ready.test, data.info.num_test)):
        assert int(compute_batch_size(split)) == 100  # what keras.distribution splits by
        assert [len(y) for _, y in split] == [100] * (count // 100)

    with pytest.raises(ValueError, match=r"batch_size 400 is larger than the 144 validation images"):
        shard_ready(load_dataset("digits", batch_size=400, image_size=(8, 8)))
