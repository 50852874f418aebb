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


def published_count(name: str):
    """``(count function, published value, decimal digits in millions or None for exact)`` of ``name``, or None.

    The tables above (and test_densenet's) are checked in test_registry, on the model that test builds
    anyway: building each of these networks a second time only to count it doubled their cost.
    """
    if name in IMAGENET_TRAINABLE:
        return trainable_count, IMAGENET_TRAINABLE[name], None
    if name in HE2016A_CIFAR:
        return trainable_count, *HE2016A_CIFAR[name]
    if name in HE2016B_CIFAR:
        return weight_tensor_count, *HE2016B_CIFAR[name]
    return None


def test_every_published_count_names_a_registered_model():
    """The count tables are checked by test_registry's build of each model: every name there is real."""
    registered = set(keras_resnets.list_models())
    assert {*IMAGENET_TRAINABLE, *HE2016A_CIFAR, *HE2016B_CIFAR} <= registered


def test_v2_and_plain_share_v1_branch_weights():
    """Pre-activation changes wiring, not weights; plain nets lose only the projection shortcuts."""
    v1 = keras_resnets.create_model("resnet18")
    assert weight_tensor_count(keras_resnets.create_model("resnet18_v2")) == weight_tensor_count(v1)
    projections = sum(int(np.prod(layer.kernel.shape)) for layer in v1.layers if layer.name.endswith("_shortcut_conv"))
    assert projections > 0
    assert weight_tensor_count(keras_resnets.create_model("plain18")) == weight_tensor_count(v1) - projections
