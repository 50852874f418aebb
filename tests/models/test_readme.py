"""The README documents every registered model and every ResNet keyword."""
import inspect
import pathlib

import pytest

import keras_resnets
from keras_resnets.models import ResNet

# Run once, on the TensorFlow backend: the README does not depend on the backend.
pytestmark = pytest.mark.backend_independent

README = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_readme_lists_every_registered_model():
    missing = [name for name in keras_resnets.list_models() if f"`{name}`" not in README]
    assert not missing, f"README model table lacks {missing}: regenerate it with `keras-resnets list --markdown`"


def test_readme_documents_every_resnet_keyword():
    documented_elsewhere = {"include_top", "weights", "input_tensor", "input_shape", "pooling", "classes",
                            "classifier_activation", "features_only", "name"}
    keywords = set(inspect.signature(ResNet).parameters) - documented_elsewhere
    missing = sorted(k for k in keywords if f"`{k}`" not in README)
    assert not missing, missing
