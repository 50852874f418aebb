"""`keras-resnets list|info` and the profile behind `info`."""
import subprocess
import sys

import pytest

import keras_resnets
from keras_resnets.cli import main
from keras_resnets.models.profile import profile_model

# Run once, on the TensorFlow backend: profiles and the CLI do not depend on the backend.
pytestmark = pytest.mark.backend_independent


def test_profile_resnet50_matches_the_paper():
    profile = profile_model(keras_resnets.create_model("resnet50"))
    assert profile.trainable_params == 25_557_032
    assert 3.8e9 < profile.macs < 3.9e9  # He et al. Table 1: 3.8 x 10^9 FLOPs (multiply-adds)
    shapes = {p.name: p.output_shape for p in profile.parts}
    assert shapes["stage4"] == (7, 7, 2048) and shapes["stem"] == (56, 56, 64)


def test_cli_list_and_info(capsys):
    assert main(["list", "cifar_resnet*"]) == 0
    out = capsys.readouterr().out
    assert "cifar_resnet110" in out and "resnet50" not in out
    assert main(["info", "cifar_resnet20", "--set", "activation=tanh", "--classes", "10"]) == 0
    out = capsys.readouterr().out
    assert "parameters 271,098" in out and "stage3" in out and "8x8x64" in out


def test_cli_bad_model_is_one_line():
    proc = subprocess.run([sys.executable, "-m", "keras_resnets.cli", "info", "resnet51"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.startswith("keras-resnets")]
    assert lines == ["keras-resnets info: error: unknown model 'resnet51'; did you mean resnet50, resnet18, resnet152? "
                     "(see keras_resnets.list_models(); " + f"{len(keras_resnets.list_models())} registered)"]
    assert "Traceback" not in proc.stderr


def test_cli_info_receptive_field(capsys):
    assert main(["info", "dilation8_context", "--set", "fc_width=8", "--input-shape", "64,64,3", "--receptive-field"]) == 0
    out = capsys.readouterr().out
    assert "context" in out and "rf" in out.lower()
