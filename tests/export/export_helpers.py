"""Helpers of the export tests: a tiny residual net and a hand-written run directory (CONTRACTS.md)."""
from __future__ import annotations

import numpy as np

from keras_resnets.data import load_dataset
from keras_resnets.runs import RunConfig

INPUT_SHAPE = (16, 16, 1)


def small_resnet(input_shape=INPUT_SHAPE, classes=10, dilation=1, classifier_activation="softmax",
                 activation="relu"):
    """Conv-BN-ReLU stem, one residual unit (optionally dilated), pooled Dense head."""
    import keras
    from keras import layers

    inputs = keras.Input(input_shape)
    x = layers.Conv2D(8, 3, padding="same", use_bias=False)(inputs)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation(activation)(x)
    y = layers.Conv2D(8, 3, padding="same", use_bias=False, dilation_rate=dilation)(x)
    y = layers.BatchNormalization(momentum=0.9)(y)
    y = layers.Activation(activation)(y)
    y = layers.Conv2D(8, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization(momentum=0.9)(y)
    x = layers.Activation(activation)(layers.Add()([x, y]))
    x = layers.Conv2D(16, 3, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.Activation(activation)(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(classes, activation=classifier_activation)(x)
    return keras.Model(inputs, outputs)


def write_run(run_dir, model, *, dataset="digits", classifier_activation="softmax", epochs=0,
              model_name="tiny_resnet", input_shape=INPUT_SHAPE):
    """Save ``model`` as ``best.keras`` with the run's ``config.json`` (digits at 16x16x1 by default).

    ``model_name`` is the run's model (a registry name for registry models); artifacts are named after it.
    """
    info = load_dataset(dataset, image_size=input_shape[:2], channels=input_shape[2]).info
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / "best.keras")
    RunConfig(**info.to_config(), model=model_name, classifier_activation=classifier_activation, epochs=epochs,
              batch_size=64, lr=0.01, schedule="constant", augment="none", seed=0,
              keras_resnets_version="0.1.0").save(run_dir)
    return run_dir


def tflite_outputs(path, images):
    """Run a .tflite on float images through ``ai_edge_litert`` (quantizing when needed)."""
    from keras_resnets.export.verify import TFLiteRunner

    return TFLiteRunner(path).predict(np.asarray(images, np.float32))
