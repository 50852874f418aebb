"""The papers' findings that can be checked in seconds, with margins measured over seeds 0, 1 and 2.

No assertion here relies on a network diverging, on a comparison of networks still at chance, or on the
L2-regularised loss. The training claims (degradation, the Identity Mappings tables) are judged by the
experiments in ``keras_resnets/experiments`` (``keras-resnets reproduce``), whose pre-registered rules are
unit-tested in ``tests/experiments`` and whose full runs are stored in ``notebooks/results``; a fast test of
them at a budget that leaves chance could not be made short enough for the suite (a 56-layer net at 8x8
stays at chance for the first 60 steps on ``textured_digits``).
"""
import keras
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def batch():
    from keras_resnets.data import load_dataset

    data = load_dataset("textured_digits", image_size=(8, 8), batch_size=32, seed=0)
    return next(iter(data.train(1)))


def _first_over_penultimate(name: str, batch, seed: int, **kwargs) -> float:
    """RMS gradient of the loss at unit 1's output over that at unit L-1's, at initialisation.

    Unit L-1 (not L) is the reference: the last unit feeds the pooling head directly in one design and
    through a final BN-ReLU in the other, which would favour one design by construction.
    """
    from keras_resnets.models import create_model
    from keras_resnets.training.analysis import unit_gradient_norms

    keras.utils.set_random_seed(seed)
    model = create_model(name, input_shape=(8, 8, 3), classes=10, **kwargs)
    norms = unit_gradient_norms(model, *batch)
    return float(norms[0] / norms[-2])


def test_identity_shortcuts_keep_the_gradient_within_an_order_of_magnitude_across_56_layers(batch):
    """Identity Mappings (dE/dx_l = dE/dx_L (1 + ...)) and Deep Residual Learning (with BN, plain nets'
    gradients do not vanish): at initialisation, depth 56, textured_digits 8x8, one batch of 32.

    Measured first/penultimate-unit gradient ratios over seeds 0, 1, 2: original unit 5.80, 6.26, 6.52;
    full pre-activation 8.13, 6.19, 6.90; plain-56 729, 1157, 935 (the plain net's gradient does not
    vanish, it grows ~1000x towards the input). Asserted with margins of 2x or more: residual ratios in
    [1, 20], plain ratio above 100. Note: with this fair reference, full pre-activation is *not*
    consistently above the original unit at initialisation (seed 1), so that is not asserted.
    """
    seed = 0
    original = _first_over_penultimate("cifar_resnet56", batch, seed)
    preact = _first_over_penultimate("cifar_resnet56", batch, seed, placement="full_preact")
    plain = _first_over_penultimate("cifar_plain56", batch, seed)
    assert 1.0 < original < 20.0 and 1.0 < preact < 20.0, (original, preact)
    assert plain > 100.0 and plain > 10 * max(original, preact), (plain, original, preact)


@pytest.mark.parametrize("variant", ["basic", "large"])
def test_context_module_is_identity_at_initialisation(variant):
    """Multi-scale context aggregation: the identity-initialised context module passes its input through
    unchanged (for non-negative inputs, which ReLU leaves alone). Exact: no seed dependence."""
    from keras_resnets.layers.context import context_module

    inputs = keras.Input((24, 24, 6))
    model = keras.Model(inputs, context_module(inputs, variant, identity_noise=0.0))
    x = np.random.default_rng(0).uniform(0, 3, (2, 24, 24, 6)).astype("float32")
    np.testing.assert_allclose(model.predict(x, verbose=0), x, rtol=1e-5, atol=1e-5)
