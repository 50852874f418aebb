"""The papers' findings that hold robustly at laptop scale, as small seeded runs (issue: "tests of the findings").

Each assertion holds with margin on every seed tried while writing it (run more with
``FINDINGS_SEEDS=0,1,2``; CI runs seed 0): the degradation test on seeds 0 and 1 in its 12-step form (and
seeds 0-2 at 100 steps in notebook 01), the gradient test on seeds 0, 1 and 2 (pre-activation ratio
1.9x-7x the original's). What did *not* hold is recorded in the notebooks and the
README's Findings table, not asserted here (e.g. the absolute gradient at the first unit at
initialisation is *smaller* for full pre-activation than for the original unit).
"""
import os

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

SEEDS = [int(s) for s in os.environ.get("FINDINGS_SEEDS", "0").split(",")]


@pytest.fixture(scope="module")
def tiny_data():
    from keras_resnets.data import load_dataset

    # 8x8 renderings keep 56-layer networks cheap; the gradient finding is about optimisation, not accuracy
    return load_dataset("textured_digits", image_size=(8, 8), batch_size=32, seed=0)


@pytest.fixture(scope="module")
def notebook_data():
    from keras_resnets.data import load_dataset

    return load_dataset("textured_digits", image_size=(16, 16), batch_size=64, seed=0)


def _last_step_loss(name: str, data, seed: int, steps: int = 12) -> float:
    """Training loss (cross-entropy + L2) of the last of ``steps`` SGD steps: the setting of
    notebooks/01_degradation.ipynb (16x16, batch 64, lr 0.05 cosine, weight decay 5e-4)."""
    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    keras.utils.set_random_seed(seed)
    model = create_model(name, input_shape=data.info.image_shape, classes=data.info.num_classes)
    recipe = with_overrides(get_recipe("cifar10_study"), lr=0.05, schedule="cosine", weight_decay=5e-4,
                            batch_size=data.batch_size)
    compile_model(model, recipe, total_steps=steps)
    running = []  # Keras logs the running mean of the epoch; the last step's loss is recovered from it
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: running.append(float(logs["loss"])))
    model.fit(data.train(1).take(steps), epochs=1, steps_per_epoch=steps, callbacks=[record], verbose=0)
    return running[-1] * steps - running[-2] * (steps - 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_degradation_plain56_trains_worse_than_plain20_residual_does_not(notebook_data, seed):
    """Deep Residual Learning: after the same SGD steps plain-56 has a higher training loss than plain-20,
    while ResNet-56's gap to ResNet-20 stays a small fraction of the plain gap. (In this short run the
    plain-56 loss blows up; ResNet-56 stays within about one nat of ResNet-20, much of it its larger
    L2 penalty.)"""
    losses = {name: _last_step_loss(name, notebook_data, seed)
              for name in ("cifar_plain20", "cifar_plain56", "cifar_resnet20", "cifar_resnet56")}
    plain_gap = losses["cifar_plain56"] - losses["cifar_plain20"]
    residual_gap = losses["cifar_resnet56"] - losses["cifar_resnet20"]
    assert plain_gap > 5.0, losses
    assert residual_gap < 0.2 * plain_gap, losses


@pytest.mark.parametrize("variant", ["basic", "large"])
def test_context_module_is_identity_at_initialisation(variant):
    """Multi-scale context aggregation: the identity-initialised context module passes its input through
    unchanged (for non-negative inputs, which ReLU leaves alone)."""
    from keras_resnets.layers.context import context_module

    inputs = keras.Input((24, 24, 6))
    model = keras.Model(inputs, context_module(inputs, variant, identity_noise=0.0))
    x = np.random.default_rng(0).uniform(0, 3, (2, 24, 24, 6)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_full_preactivation_carries_more_gradient_to_the_first_unit_at_depth_56(tiny_data, seed):
    """Identity Mappings: after a few SGD steps, the gradient reaching the first unit of a 56-layer
    network, relative to the gradient at the last unit, is larger with full pre-activation than with
    the original unit (measured with ``keras-resnets analyze``'s gradient_flow)."""
    from keras_resnets.training.analysis import gradient_flow

    original = gradient_flow("original", 56, tiny_data, steps=10, seed=seed)
    preact = gradient_flow("pre-activation", 56, tiny_data, steps=10, seed=seed)
    assert preact.ratio("after_training") > 1.5 * original.ratio("after_training"), (
        preact.ratio("after_training"), original.ratio("after_training"))
