"""Model analysis: parameters/FLOPs per model and the gradient-flow report of *Identity Mappings*.

With identity shortcuts and nothing after the addition (pre-activation units), the gradient of the
loss reaches every unit directly: ``dE/dx_l = dE/dx_L (1 + d/dx_l sum F)``. ``gradient_flow``
measures the norm of ``dE/dx_l`` at every residual unit's output (layers ``stage{s}_unit{u}_out``),
at initialisation and after some SGD steps, so original, pre-activation and plain networks can be
compared unit by unit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import keras
import numpy as np

UNIT_OUTPUT = re.compile(r"^stage(\d+)_unit(\d+)_(out|add)$")

# variant name -> create_model arguments (``{depth}`` is filled in)
VARIANTS = {
    "original": {"name": "cifar_resnet20"},
    "pre-activation": {"name": "cifar_resnet20", "placement": "full_preact"},
    "plain": {"name": "cifar_plain20"},
}


def unit_output_layers(model: keras.Model) -> list:
    """The residual units' output layers in depth order: ``stage{s}_unit{u}_out`` (else ``_add``)."""
    found = {}
    for layer in model.layers:
        match = UNIT_OUTPUT.match(layer.name)
        if match:
            key = (int(match.group(1)), int(match.group(2)))
            if match.group(3) == "out" or key not in found:
                found[key] = layer
    if not found:
        raise ValueError(f"model {model.name!r} has no layers named stage<s>_unit<u>_out or _add")
    return [found[key] for key in sorted(found)]


def unit_gradient_norms(model: keras.Model, images, labels) -> np.ndarray:
    """Size of the loss gradient at each unit's output: per-image RMS, averaged over the batch.

    The RMS (L2 norm / sqrt(number of elements)) makes units with different feature-map sizes
    comparable.

    Args:
        model: a model whose units are found by ``unit_output_layers``.
        images: a batch of normalised images.
        labels: their integer labels.

    Returns:
        ``(units,)`` array: mean over images of ``||dE/dx_l|| / sqrt(size of x_l)``.
    """
    import tensorflow as tf

    units = unit_output_layers(model)
    probe = keras.Model(model.inputs, [layer.output for layer in units] + [model.output])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=False, reduction="sum")
    with tf.GradientTape() as tape:
        *activations, predictions = probe(images, training=True)  # batch statistics, as in training
        loss = loss_fn(labels, predictions)
    grads = tape.gradient(loss, activations)
    norms = []
    for g in grads:
        flat = tf.reshape(g, [tf.shape(g)[0], -1])
        norms.append(float(tf.reduce_mean(tf.sqrt(tf.reduce_mean(tf.square(flat), axis=1)))))
    return np.array(norms)


@dataclass
class GradientFlow:
    """Per-unit gradient norms of one network.

    Attributes:
        variant: ``original``, ``pre-activation`` or ``plain``.
        units: unit names (``stage1_unit1``, ...), input side first.
        at_init: norms at initialisation.
        after_training: norms after ``steps`` SGD steps.
        steps: SGD steps between the two measurements.
        train_accuracy: training accuracy of the last steps.
    """

    variant: str
    units: list
    at_init: list
    after_training: list
    steps: int
    train_accuracy: float = float("nan")
    extra: dict = field(default_factory=dict)

    def ratio(self, which: str = "at_init") -> float:
        """First unit's norm over last unit's: > 1 means the gradient grows towards the input."""
        values = getattr(self, which)
        return float(values[0] / values[-1])


def gradient_flow(variant: str, depth: int, datasets, steps: int = 50, seed: int = 0, lr: float = 0.1) -> GradientFlow:
    """Measure gradient norms per unit of a CIFAR network at init and after ``steps`` SGD steps.

    Args:
        variant: key of ``VARIANTS``.
        depth: network depth (6n+2).
        datasets: ``keras_resnets.data.Datasets`` supplying images (its first training batches).
        steps: SGD steps (momentum 0.9, weight decay 1e-4, constant ``lr``) between measurements.
        seed: weight initialisation seed.
        lr: learning rate of the steps.
    """
    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; allowed: {', '.join(VARIANTS)}")
    spec = dict(VARIANTS[variant])
    keras.utils.set_random_seed(seed)
    model = create_model(spec.pop("name"), depth=depth, input_shape=datasets.info.image_shape,
                         classes=datasets.info.num_classes, **spec)
    images, labels = next(iter(datasets.train(1)))
    at_init = unit_gradient_norms(model, images, labels)
    recipe = with_overrides(get_recipe("cifar10_study"), lr=lr, schedule="constant", augment="none")
    compile_model(model, recipe, total_steps=steps)
    epochs = max(1, -(-steps // datasets.steps_per_epoch))
    history = model.fit(datasets.train(epochs).take(steps), epochs=1, steps_per_epoch=steps, verbose=0,
                        shuffle=False)
    after = unit_gradient_norms(model, images, labels)
    names = [layer.name.rsplit("_", 1)[0] for layer in unit_output_layers(model)]
    return GradientFlow(variant, names, at_init.tolist(), after.tolist(), steps,
                        float(history.history["accuracy"][-1]))


def plot_gradient_flow(flows: list, depth: int, out_png: str) -> None:
    """Per-unit gradient norms (log scale), one line per variant, at init and after training."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=False)
    for ax, which, title in ((axes[0], "at_init", "at initialisation"), (axes[1], "after_training", "after training")):
        for flow in flows:
            ax.plot(range(1, len(flow.units) + 1), getattr(flow, which), marker=".", label=flow.variant)
        ax.set_yscale("log")
        ax.set_xlabel("residual unit (input side -> output side)")
        ax.set_ylabel("RMS of dE/dx_l")
        suffix = f" ({flows[0].steps} SGD steps)" if which == "after_training" else ""
        ax.set_title(f"depth {depth}: gradient reaching each unit, {title}{suffix}")
        ax.grid(alpha=0.3, which="both")
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
