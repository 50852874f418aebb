"""``keras-resnets evaluate RUN --protocol ...``: the ImageNet evaluation protocols of *Deep Residual Learning*.

Protocols (crop sizes follow the run's input size ``s``; the papers' numbers are for ``s = 224``):

- ``centre_crop``: shorter side resized to ``256 s / 224``, the central ``s x s`` crop.
- ``ten_crop``: shorter side to ``256 s / 224``, the four corner crops and the central one, each
  also mirrored; the ten softmax outputs are averaged (AlexNet's protocol, the paper's Table 3).
- ``multi_scale``: the paper's fully-convolutional testing: the network is rebuilt for inputs of
  any size, the whole image is resized so that its shorter side is each of
  ``{224, 256, 384, 480, 640} * s / 224``, and the scores at every scale and its mirror image are
  averaged (Table 4). Images go through one at a time (their shapes differ).

Images come from the run's dataset (``config.json``): the held-out split of a folder (same seed
and ``--validation-split`` as ``train``), ``--split all`` for every image of ``--data-dir`` (e.g.
the ImageNet validation folder), or a TFDS split. Results go to ``RUN/eval-<protocol>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from keras_resnets.checks import positive

PROTOCOLS = ("centre_crop", "ten_crop", "multi_scale")
SPLITS = ("test", "validation", "all")
PAPER_SCALES = (224, 256, 384, 480, 640)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``evaluate`` options to ``parser``."""
    parser.add_argument("run", help="run directory (written by keras-resnets train)")
    parser.add_argument("--protocol", action="append", choices=PROTOCOLS,
                        help="centre_crop (default), ten_crop, multi_scale; repeatable")
    parser.add_argument("--split", default="test", choices=SPLITS,
                        help="test (default; a folder's held-out images), validation, or all images of --data-dir")
    parser.add_argument("--data-dir", help="read the images from here instead of the run's data_dir")
    parser.add_argument("--validation-split", type=float, default=0.1,
                        help="the held-out share the run was trained with (default: %(default)s, as train)")
    parser.add_argument("--scales", help="multi_scale shorter sides, e.g. 224,256,384,480,640 "
                                         "(default: those, times input size / 224)")
    parser.add_argument("--model", dest="checkpoint", default="best", choices=("best", "final"),
                        help="which saved model (default: best)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--limit", type=int, help="evaluate only the first N images")


def run(args: argparse.Namespace) -> int:
    """Evaluate as the arguments say; print one JSON object per protocol."""
    from keras_resnets.data import DatasetUnavailableError

    scales = _parse_scales(args.scales)
    try:
        results = evaluate_run(args.run, protocols=tuple(args.protocol or ("centre_crop",)), split=args.split,
                               data_dir=args.data_dir, validation_split=args.validation_split, scales=scales,
                               which=args.checkpoint, batch_size=args.batch_size, limit=args.limit)
    except DatasetUnavailableError as err:
        print(f"keras-resnets evaluate: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=2))
    return 0


def _parse_scales(text):
    if text is None:
        return None
    try:
        scales = tuple(int(s) for s in text.split(","))
    except ValueError:
        scales = ()
    if not scales or min(scales) <= 0:
        raise ValueError(f"--scales must be positive integers separated by commas, e.g. 224,256,384; got {text!r}")
    return scales


def read_config(run_dir: str) -> dict:
    """The run's configuration, read through ``RunConfig`` (classification runs only).

    Raises:
        ValueError: no such run, an invalid ``config.json``, or a segmentation run (the message names it).
    """
    from keras_resnets.runs import RunConfig
    from keras_resnets.tasks import get_task

    config = RunConfig.load(run_dir)
    if not get_task(config.task).evaluation_protocols:
        raise ValueError(f"evaluate protocols are for classification runs; {run_dir!r} is a {config.task} run "
                         f"(its metrics.json holds mean IoU and pixel accuracy)")
    return config.to_dict()


def evaluate_run(run_dir: str, protocols=("centre_crop",), *, split: str = "test", data_dir=None,
                 validation_split: float = 0.1, scales=None, which: str = "best", batch_size: int = 32,
                 limit=None) -> dict:
    """Evaluate a run's model with the given protocols; write ``eval-<protocol>.json`` next to it.

    Args:
        run_dir: the run directory.
        protocols: any of ``PROTOCOLS``.
        split: ``test``, ``validation`` or ``all`` (every image of the folder).
        data_dir: image folder / TFDS data dir replacing the run's.
        validation_split: the held-out share the run was trained with (folders, TFDS validation).
        scales: shorter sides of ``multi_scale`` (default ``PAPER_SCALES`` times input size / 224).
        which: ``best`` or ``final`` model.
        batch_size: images per batch (``centre_crop``, ``ten_crop``).
        limit: evaluate only the first ``limit`` images.

    Returns:
        ``{protocol: {"top1": ..., "top5": ..., "images": ..., "seconds": ...}}``.

    Raises:
        ValueError: unknown protocol/split/model choice, no run, a model that cannot be rebuilt
            for variable input sizes (``multi_scale``).
    """
    for protocol in protocols:
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; allowed: {', '.join(SPLITS)}")
    if which not in ("best", "final"):
        raise ValueError(f"unknown model choice {which!r}; allowed: best, final")
    batch_size, limit = positive("batch_size", batch_size), positive("limit", limit)
    config = read_config(run_dir)
    from keras_resnets.runs import RunDir

    model_path = RunDir(run_dir).model_file(which)
    if model_path is None:
        raise ValueError(f"run {run_dir!r} has no saved model ({which}.keras or final.keras)")
    source = evaluation_split(config, split, data_dir, validation_split, limit)

    from keras_resnets.training.build import load_model_file

    model = load_model_file(model_path)
    results = {}
    for protocol in protocols:
        started = time.perf_counter()
        labels, scores = PROTOCOL_FUNCTIONS[protocol](model, source, config, batch_size=batch_size, scales=scales)
        result = {**_accuracy(labels, scores), "images": int(len(labels)), "split": split,
                  "seconds": round(time.perf_counter() - started, 2), "model": os.path.basename(model_path)}
        if protocol == "multi_scale":
            result["scales"] = list(_scales(config, scales))
        from keras_resnets.runs import write_json

        write_json(os.path.join(run_dir, f"eval-{protocol}.json"), result)
        results[protocol] = result
    return results


def evaluation_split(config: dict, split: str, data_dir, validation_split: float, limit):
    """The images to evaluate, as a split with ``examples()`` (see ``evaluate_run``), from the dataset
    registry's entry of the run's dataset."""
    from keras_resnets.data import registry

    dataset = config["dataset"]
    entry = registry.get_dataset(dataset)
    if entry.evaluation_split is None:
        raise ValueError(f"dataset {dataset!r} has no images for the evaluation protocols; datasets that do: "
                         f"{', '.join(n for n, e in registry.DATASETS.items() if e.evaluation_split)} or any TFDS name")
    return entry.evaluation_split(dataset, config, split, data_dir or config.get("data_dir"), validation_split, limit)


def _normalise(images, config):
    import tensorflow as tf

    norm = config["normalization"]
    return (images - tf.constant(norm["mean"], tf.float32)) / tf.constant(norm["std"], tf.float32)


def _probabilities(model, images, config):
    import keras
    import numpy as np

    images = np.asarray(images, np.float32)  # tf.data tensors -> numpy: any Keras backend
    outputs = keras.ops.convert_to_numpy(model(images, training=False)).astype(np.float64)
    if config.get("classifier_activation") is None:  # logits
        outputs = np.exp(outputs - outputs.max(axis=-1, keepdims=True))
        outputs /= outputs.sum(axis=-1, keepdims=True)
    return outputs


def _decoded(source, image_fn, element_shape):
    """``(image, label)`` of every example through ``image_fn``; unreadable files skipped by name."""
    import tensorflow as tf

    from keras_resnets.data import streaming

    decoded = source.examples().map(lambda p, i, data, label: (p, i, image_fn(data), label),
                                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if isinstance(source, streaming.FileSplit):
        decoded = streaming.skip_unreadable(decoded, source, None, element_shape)
    return decoded.map(lambda p, i, image, label: (image, label))


def centre_crop(model, source, config, batch_size=32, **_):
    """Single centre crop: labels and class probabilities."""
    import numpy as np

    from keras_resnets.data import imagenet

    size, channels = config["input_shape"][0], config["input_shape"][2]
    ds = _decoded(source, lambda data: imagenet.eval_image(data, size, channels), (size, size, channels))
    labels, scores = [], []
    for images, y in ds.batch(batch_size):
        scores.append(_probabilities(model, _normalise(images, config), config))
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(scores)


def ten_crop(model, source, config, batch_size=32, **_):
    """10-crop: four corners and the centre, and their mirrors; probabilities averaged."""
    import numpy as np
    import tensorflow as tf

    from keras_resnets.data import imagenet

    size, channels = config["input_shape"][0], config["input_shape"][2]
    ds = _decoded(source, lambda data: imagenet.ten_crops(imagenet.full_image(data, channels), size),
                  (10, size, size, channels))
    labels, scores = [], []
    for crops, y in ds.batch(max(1, batch_size // 10)):
        flat = tf.reshape(crops, [-1, size, size, channels])
        probabilities = _probabilities(model, _normalise(flat, config), config)
        scores.append(probabilities.reshape(len(y), 10, -1).mean(axis=1))
        labels.append(y.numpy())
    return np.concatenate(labels), np.concatenate(scores)


def _scales(config, scales):
    if scales is not None:
        return tuple(scales)
    size = config["input_shape"][0]
    return tuple(int(round(s * size / 224)) for s in PAPER_SCALES)


def fully_convolutional(model, config):
    """The run's network rebuilt for inputs of any size, with the trained weights."""
    from keras_resnets.models import create_model

    channels = config["input_shape"][2]
    try:
        net = create_model(config["model"], input_shape=(None, None, channels), classes=config["classes"],
                           classifier_activation=config.get("classifier_activation"),
                           **config.get("model_kwargs", {}))
        net.set_weights(model.get_weights())
    except Exception as err:  # a builder that needs a fixed input size
        raise ValueError(f"model {config['model']!r} cannot be rebuilt for inputs of any size, which "
                         f"multi_scale needs ({type(err).__name__}: {err}); use centre_crop or ten_crop") from None
    return net


def multi_scale(model, source, config, scales=None, **_):
    """Fully-convolutional multi-scale testing: whole image at each shorter side and mirrored, averaged."""
    import numpy as np
    import tensorflow as tf

    from keras_resnets.data import imagenet

    channels = config["input_shape"][2]
    net = fully_convolutional(model, config)
    sides = _scales(config, scales)
    ds = _decoded(source, lambda data: tf.cast(imagenet.full_image(data, channels), tf.float32),
                  (1, 1, channels))
    labels, scores = [], []
    for image, y in ds:
        total = 0.0
        for side in sides:
            resized = _normalise(imagenet.resize_shorter(image, side), config)[None]
            both = tf.concat([resized, tf.reverse(resized, axis=[2])], axis=0)
            total = total + _probabilities(net, both, config).sum(axis=0)
        scores.append(total / (2 * len(sides)))
        labels.append(int(y))
    return np.asarray(labels), np.stack(scores)


PROTOCOL_FUNCTIONS = {"centre_crop": centre_crop, "ten_crop": ten_crop, "multi_scale": multi_scale}


def _accuracy(labels, scores) -> dict:
    import numpy as np

    if len(labels) == 0:
        raise ValueError("no readable images to evaluate")
    ranked = np.argsort(-scores, axis=1)
    k = min(5, scores.shape[1])
    return {
        "top1": round(float(np.mean(ranked[:, 0] == labels)), 5),
        f"top{k}": round(float(np.mean((ranked[:, :k] == labels[:, None]).any(axis=1))), 5),
    }
