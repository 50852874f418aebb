"""keras-resnets calibrate: a measured backend choice, cached per machine, and train's one-line hint."""
import json

import pytest

from keras_resnets import calibration
from keras_resnets.cli import main

pytestmark = pytest.mark.tf_only


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path


def test_calibrate_measures_and_caches(capsys):
    assert main(["calibrate", "--model", "cifar_resnet20", "--image-size", "8", "--batch-size", "4",
                 "--backends", "tensorflow", "--steps", "1", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "fastest: KERAS_BACKEND=tensorflow" in out
    entry = calibration.cached("cifar_resnet20", (8, 8, 3), 4)
    assert entry["fastest"] == "tensorflow" and entry["images_per_s"]["tensorflow"] > 0
    assert calibration.cached("cifar_resnet20", (8, 8, 3), 8) is None  # keyed by the batch size too
    assert calibration.recommendation("cifar_resnet20", (8, 8, 3), 4, backend="tensorflow") is None


def test_recommendation_names_a_faster_backend_only():
    key = calibration.machine_key("cifar_resnet56", (32, 32, 3), 128)
    path = calibration.cache_path()
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({key: {"images_per_s": {"tensorflow": 100.0, "jax": 40.0, "torch": 105.0},
                                      "fastest": "torch", "date": "2026-12-04"}}))
    assert calibration.recommendation("cifar_resnet56", (32, 32, 3), 128, backend="torch") is None
    assert calibration.recommendation("cifar_resnet56", (32, 32, 3), 128, backend="tensorflow") is None  # within 10 %
    line = calibration.recommendation("cifar_resnet56", (32, 32, 3), 128, backend="jax")
    assert "KERAS_BACKEND=torch" in line and "2.6x" in line and "export still needs TensorFlow" in line
    assert calibration.recommendation("cifar_resnet56", (16, 16, 3), 128, backend="jax") is None


def test_unknown_backend_is_refused_in_one_line(capsys):
    assert main(["calibrate", "--backends", "tensorflow,mxnet"]) == 2
    assert "unknown backend 'mxnet'; allowed: tensorflow, jax, torch" in capsys.readouterr().err
