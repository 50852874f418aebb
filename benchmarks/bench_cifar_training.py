"""Training throughput of CIFAR ResNet-56: ours vs a keras.applications-style baseline, XLA on vs off.

The baseline is a straightforward functional CIFAR ResNet-56 written the way keras.applications
writes ResNets (conv-BN-ReLU basic blocks, 1x1 projection shortcuts when the shape changes). Both
train with the same SGD step on the same random 32x32x3 batches. Prints images/s and the ratios
ours/baseline (goal >= 1.0x) and XLA-on/XLA-off on this machine.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

BATCH, WARMUP_STEPS, TIMED_STEPS = 128, 3, 12


def baseline_resnet56(input_shape=(32, 32, 3), classes=10) -> keras.Model:
    """CIFAR ResNet-56 in the keras.applications style (projection shortcuts)."""

    def block(x, filters, stride, name):
        shortcut = x
        if stride != 1 or x.shape[-1] != filters:
            shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False, name=f"{name}_0_conv")(x)
            shortcut = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_0_bn")(shortcut)
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_1_conv")(x)
        x = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_1_bn")(x)
        x = layers.Activation("relu", name=f"{name}_1_relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(x)
        x = layers.BatchNormalization(epsilon=1.001e-5, name=f"{name}_2_bn")(x)
        x = layers.Add(name=f"{name}_add")([shortcut, x])
        return layers.Activation("relu", name=f"{name}_out")(x)

    inputs = layers.Input(input_shape)
    x = layers.Conv2D(16, 3, padding="same", use_bias=False, name="conv1_conv")(inputs)
    x = layers.BatchNormalization(epsilon=1.001e-5, name="conv1_bn")(x)
    x = layers.Activation("relu", name="conv1_relu")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for unit in range(9):
            x = block(x, filters, 2 if (unit == 0 and stage > 1) else 1, f"conv{stage + 1}_block{unit + 1}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="baseline_resnet56")


def images_per_second(model: keras.Model, jit_compile: bool) -> float:
    """Train-step throughput of ``model`` on random CIFAR-size batches."""
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy",
                  jit_compile=jit_compile)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH * TIMED_STEPS, 32, 32, 3)).astype("float32")
    y = rng.integers(0, 10, size=BATCH * TIMED_STEPS).astype("int32")
    model.fit(x[: BATCH * WARMUP_STEPS], y[: BATCH * WARMUP_STEPS], batch_size=BATCH, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False)
    return BATCH * TIMED_STEPS / (time.perf_counter() - started)


def main():
    from keras_resnets.models import create_model

    print(f"CIFAR ResNet-56 training throughput, batch {BATCH}, {TIMED_STEPS} timed steps, "
          f"{os.cpu_count()} CPU cores, backend {keras.backend.backend()}")
    ours = create_model("cifar_resnet56", input_shape=(32, 32, 3), classes=10)
    baseline = baseline_resnet56()
    print(f"  parameters: ours {ours.count_params():,} (option A shortcuts), baseline {baseline.count_params():,}")
    ours_off = images_per_second(ours, jit_compile=False)
    print(f"  ours,     XLA off {ours_off:>9.1f} images/s")
    base_off = images_per_second(baseline, jit_compile=False)
    print(f"  baseline, XLA off {base_off:>9.1f} images/s")
    ours_on = images_per_second(create_model("cifar_resnet56", input_shape=(32, 32, 3), classes=10),
                                jit_compile=True)
    print(f"  ours,     XLA on  {ours_on:>9.1f} images/s")
    print(f"ratio ours/baseline (XLA off): {ours_off / base_off:.2f}x")
    print(f"ratio XLA on/off (ours):       {ours_on / ours_off:.2f}x")


if __name__ == "__main__":
    main()
