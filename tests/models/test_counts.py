"""Parameter counts equal the published ones."""
import numpy as np
import pytest

import keras_resnets

from .helpers import trainable_count, weight_tensor_count

# Run once, on the TensorFlow backend: parameter counts do not depend on the backend.
pytestmark = pytest.mark.backend_independent

# ImageNet, 1000 classes, no conv bias before BN: the counts torchvision and the papers' code give.
IMAGENET_TRAINABLE = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
}

# *Deep Residual Learning*, Table 6 (CIFAR-10, option A), in millions at the printed precision.
# Its counts include BatchNorm's scale and shift (all trainable parameters).
HE2016A_CIFAR = {
    "cifar_resnet20": (0.27, 2),
    "cifar_resnet32": (0.46, 2),
    "cifar_resnet44": (0.66, 2),
    "cifar_resnet56": (0.85, 2),
    "cifar_resnet110": (1.7, 1),
}  # cifar_resnet1202 (19.4M) is checked in test_registry, where it is built once for its round trip

# *Identity Mappings*, Tables 2-4: pre-activation nets; counted as convolution and dense weights.
HE2016B_CIFAR = {
    "preact_resnet110": (1.7, 1),
    "preact_resnet164": (1.7, 1),
}  # preact_resnet1001 (10.2M): see test_registry


@pytest.mark.parametrize("name,expected", sorted(IMAGENET_TRAINABLE.items()))
def test_imagenet_resnet_trainable_parameters_are_exact(name, expected):
    assert trainable_count(keras_resnets.create_model(name)) == expected


@pytest.mark.parametrize("name,published", sorted(HE2016A_CIFAR.items()))
def test_cifar_resnet_counts_match_he2016a(name, published):
    millions, digits = published
    assert round(trainable_count(keras_resnets.create_model(name)) / 1e6, digits) == millions


@pytest.mark.parametrize("name,published", sorted(HE2016B_CIFAR.items()))
def test_preact_counts_match_he2016b(name, published):
    millions, digits = published
    assert round(weight_tensor_count(keras_resnets.create_model(name)) / 1e6, digits) == millions


def test_v2_and_plain_share_v1_branch_weights():
    """Pre-activation changes wiring, not weights; plain nets lose only the projection shortcuts."""
    v1 = keras_resnets.create_model("resnet18")
    assert weight_tensor_count(keras_resnets.create_model("resnet18_v2")) == weight_tensor_count(v1)
    projections = sum(int(np.prod(layer.kernel.shape)) for layer in v1.layers if layer.name.endswith("_shortcut_conv"))
    assert projections > 0
    assert weight_tensor_count(keras_resnets.create_model("plain18")) == weight_tensor_count(v1) - projections
