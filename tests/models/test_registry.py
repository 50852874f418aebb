"""Every registered model builds, runs and round-trips through .keras (safe_mode) on this backend."""
import keras
import numpy as np
import pytest

import keras_resnets
from keras_resnets.models.registry import get_entry

from . import test_counts, test_densenet
from .helpers import assert_roundtrip, infer, random_images, small_overrides, trainable_count, weight_tensor_count

ALL_MODELS = keras_resnets.list_models()
VERY_DEEP = {"cifar_resnet1202", "preact_resnet1001"}

REQUIRED_NAMES = (
    [f"resnet{d}" for d in (18, 34, 50, 101, 152, 200)]
    + [f"resnet{d}_v2" for d in (18, 34, 50, 101, 152, 200)]
    + [f"cifar_resnet{d}" for d in (20, 32, 44, 56, 110, 1202)]
    + ["preact_resnet110", "preact_resnet164", "preact_resnet1001", "plain18", "plain34"]
    + [f"cifar_plain{d}" for d in (20, 32, 44, 56, 110)]
)


def test_required_names_are_registered():
    missing = sorted(set(REQUIRED_NAMES) - set(ALL_MODELS))
    assert not missing, missing


def test_list_models_pattern_and_family():
    assert keras_resnets.list_models("resnet5*") == ["resnet50", "resnet50_v2"]
    assert set(keras_resnets.list_models(family="plain")) == {"plain18", "plain34", *[f"cifar_plain{d}" for d in (20, 32, 44, 56, 110)]}
    assert keras_resnets.list_models("no_such_*") == []


def assert_published_count(name, model):
    """The papers' parameter count of ``name`` (tables of test_counts and test_densenet), where one exists."""
    published = test_counts.published_count(name) or test_densenet.published_count(name)
    if published is None:
        return
    count, value, digits = published
    counted = count(model)
    assert (counted if digits is None else round(counted / 1e6, digits)) == value, (name, counted, value)


@pytest.mark.parametrize("name", [n for n in ALL_MODELS if n not in VERY_DEEP])
def test_builds_runs_and_roundtrips(name, tmp_path):
    """Builds with the registry's default classes (1000 for ImageNet, 10 for CIFAR), so the same model
    also carries the published parameter count where a paper gives one."""
    overrides = {key: value for key, value in small_overrides(name).items() if key != "classes"}
    model = keras_resnets.create_model(name, **overrides)
    assert_published_count(name, model)
    if name.startswith("cifar_"):
        assert model.output_shape == (None, 10)
    x = random_images(overrides["input_shape"])
    out = infer(model, x)
    assert out.shape[0] == 2 and np.isfinite(out).all()
    if keras.backend.backend() == "tensorflow":  # serialisation is backend-independent: checked once
        loaded = assert_roundtrip(model, tmp_path, x, expected=out)
        assert loaded.name == model.name


@pytest.mark.slow
@pytest.mark.torch
@pytest.mark.parametrize("name,published", [("cifar_resnet1202", 19.4), ("preact_resnet1001", 10.2)])
def test_very_deep_models_build_count_and_roundtrip(name, published, tmp_path):
    """Built once: the published size (see test_counts for the conventions), finite outputs in
    inference mode at initialisation (the BNs' initial moving variance follows the residual stream's
    growth; with ones the stream overflows float32), then the .keras round trip.

    The round trip of ~4,000 layers is backend-independent serialisation and takes minutes under
    JAX's op-by-op execution, so it runs on the TensorFlow backend.
    """
    model = keras_resnets.create_model(name, classes=10)
    count = trainable_count(model) if name.startswith("cifar_") else weight_tensor_count(model)
    assert round(count / 1e6, 1) == published
    x = random_images((32, 32, 3), batch=1)
    out = infer(model, x)
    assert np.isfinite(out).all() and np.abs(out).max() < 1e3, (name, out)
    if keras.backend.backend() == "tensorflow":
        assert_roundtrip(model, tmp_path, x, expected=out)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_every_model_documents_its_keywords(name):
    entry = get_entry(name)
    assert entry.description
    entry.check_defaults()  # the catalog's defaults are keywords of its builder
    keywords = entry.keywords()
    for common in ("include_top", "weights", "input_shape", "input_tensor", "pooling", "classes", "classifier_activation"):
        assert common in keywords, (name, common)
