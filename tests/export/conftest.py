"""Fixtures for the export tests: a tiny residual net trained briefly on the embedded digits,
saved as a run directory that follows docs/CONTRACTS.md."""
from __future__ import annotations

import shutil

import pytest

from export_helpers import INPUT_SHAPE, small_resnet, write_run
from keras_resnets.data import load_dataset


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A run directory with a tiny residual net trained for a few epochs on digits (~88% top-1)."""
    import keras

    keras.utils.set_random_seed(0)
    data = load_dataset("digits", batch_size=64, image_size=INPUT_SHAPE[:2], channels=INPUT_SHAPE[2])
    model = small_resnet()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(data.train(8), steps_per_epoch=data.steps_per_epoch, epochs=8, verbose=0, shuffle=False)
    return write_run(tmp_path_factory.mktemp("runs") / "digits", model, epochs=8)


@pytest.fixture()
def fresh_run(tmp_path, digits_run):
    """A copy of the trained run whose export folder each test may fill."""
    return shutil.copytree(digits_run, tmp_path / "run")
