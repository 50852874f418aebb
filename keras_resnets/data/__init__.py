"""Input pipelines (tf.data): the embedded digits, TFDS datasets, image folders, augmentation.

``load_dataset(name, ...)`` returns a ``Datasets`` whose ``train(epochs, initial_epoch)`` pipeline
is a pure function of ``(seed, epoch)`` and whose ``validation``/``test`` pipelines are cached.
"""
from keras_resnets.environment import start_quietly

start_quietly(uses_tensorflow=False)  # before the pipelines import Keras (and TensorFlow on its backend)

from keras_resnets.data.augment import POLICIES, apply_policy, augment_batch, expand_statically  # noqa: E402
from keras_resnets.data.datasets import DatasetInfo, Datasets, channel_stats  # noqa: E402
from keras_resnets.data.registry import list_datasets, load_dataset  # noqa: E402
from keras_resnets.data.sources import DatasetUnavailableError  # noqa: E402

__all__ = [
    "POLICIES",
    "DatasetInfo",
    "DatasetUnavailableError",
    "Datasets",
    "apply_policy",
    "augment_batch",
    "channel_stats",
    "expand_statically",
    "list_datasets",
    "load_dataset",
]
