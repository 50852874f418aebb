"""tune's arguments are checked before the search starts, each bad one ending in one line (16.5, 16.6)."""
import os

import pytest

pytestmark = pytest.mark.tf_only

BASE = ["tune", "--model", "cifar_resnet20", "--model-arg", "depth=8", "--image-size", "8", "--max-epochs", "1",
        "--space-arg", "augment=none", "--space-arg", "activation=relu", "--space-arg", "lr_ratio=2:1:1"]


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--max-trials", "0"], "max_trials must be a positive integer; got 0"),  # 16.5
        (["--max-trials", "-2"], "max_trials must be a positive integer; got -2"),
        (["--model-arg", "placemnt=1"], "do not build 'cifar_resnet20'"),  # 16.6: misspelled keyword
        (["--objective", "val_mean_iou"], "objective 'val_mean_iou' is not reported by classification models"),
    ],
)
def test_bad_tune_arguments_end_in_one_line_before_any_trial(tmp_path, capsys, argv, expected):
    from keras_resnets.cli import main

    code = main([*BASE, *argv, "--runs-dir", str(tmp_path), "--run-name", "bad"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and expected in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert not os.path.exists(tmp_path / "bad" / "tune" / "oracle.json")  # no search started
