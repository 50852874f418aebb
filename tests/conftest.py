"""Shared test settings: quiet TensorFlow, skip TensorFlow-only tests on other backends."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    if keras.backend.backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend (running on {keras.backend.backend()})")
    for item in items:
        if "tf_only" in item.keywords:
            item.add_marker(skip)
