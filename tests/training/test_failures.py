"""A run that fails — a full disk, a write failing at any phase of an epoch's end, a loss that diverges —
ends in one true line, and resuming it keeps every finished epoch exactly once (docs/guarantees.md)."""
import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from keras_resnets.runs import RunDir, RunWriteError

pytestmark = pytest.mark.tf_only

TINY = dict(model_kwargs={"depth": 8}, image_size=(16, 16), recipe="digits_demo", batch_size=128, verbose=0)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHILD = os.path.join(os.path.dirname(__file__), "resume_child.py")
TINY_CLI = ["--model-arg", "depth=8", "--image-size", "16", "--recipe", "digits_demo", "--batch-size", "128", "--quiet"]


@pytest.fixture(scope="module")
def digits16():
    from keras_resnets.data import load_dataset

    return load_dataset("digits", batch_size=128, image_size=(16, 16), augment="crop")


def _epochs(history_csv):
    with open(history_csv, newline="") as f:
        return [int(float(row["epoch"])) for row in csv.DictReader(f)]


def _child(*args):
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, CHILD, *args], env=env, capture_output=True, text=True, timeout=400)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MiB tmpfs: a real file system that a test can fill."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_full_disk_is_one_line_without_crash_and_resume_keeps_every_epoch(small_disk):
    """The file system fills up after epoch 1: the process ends with one line and status 1 (no h5py
    traceback, no segmentation fault); with space again, --resume finishes with epochs 0, 1, 2 in history.csv."""
    runs, filler = str(small_disk / "runs"), str(small_disk / "filler")
    full = _child(runs, "full", "--fill-disk-after-epoch", "0", "--filler", filler)
    assert full.returncode == 1, full.stderr[-3000:]
    assert "Traceback" not in full.stderr and "Exception ignored" not in full.stderr, full.stderr[-3000:]
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write to run") and "No space left on device" in last
    assert "1 finished epoch is kept" in last and "continues from epoch 2" in last

    run = RunDir(os.path.join(runs, "full"))
    import keras

    import keras_resnets.layers  # noqa: F401  registers the package's layers for loading

    keras.saving.load_model(run.best_model)  # the files it keeps load
    assert json.load(open(os.path.join(run.backup, "training_metadata.json")))["epoch"] == 1

    os.remove(filler)  # space again
    resumed = _child(runs, "full", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _epochs(run.history) == [0, 1, 2]
    metrics = json.load(open(run.metrics))
    assert metrics["status"] == "completed" and metrics["epochs"] == 3 and metrics["resumed_from_epoch"] == 1


class Obstacle:
    """At the start of epoch 2, a folder takes the temporary name of ``name``'s next version, so that
    file's write fails at the end of that epoch (as a full disk or a kill would stop it there)."""

    def __init__(self, run_dir, name):
        self.folder = os.path.join(run_dir, *(("checkpoints", "backup") if name == "training_metadata.json" else
                                              ("checkpoints",) if name == "last.weights.h5" else ()))
        self.path = os.path.join(self.folder, f".tmp-{os.getpid()}-{name}")

    def callback(self):
        import keras

        obstacle = self

        class PlaceAtSecondEpoch(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                if epoch == 1:
                    os.makedirs(os.path.join(obstacle.path, "blocked"))

        return PlaceAtSecondEpoch()


@pytest.mark.parametrize("phase", ["history.csv", "last.weights.h5", "training_metadata.json"])
def test_a_write_failing_at_any_phase_of_an_epoch_end_loses_no_epoch(tmp_path, digits16, phase):
    """history.csv, then the checkpoints, then the resume state (the commit): a failure at each step
    ends with RunWriteError, and the resumed run's history.csv holds epochs 0 and 1 exactly once."""
    from keras_resnets.training import train

    obstacle = Obstacle(str(tmp_path / "phase"), phase)
    with pytest.raises(RunWriteError, match=r"1 finished epoch is kept .* continues from epoch 2") as failed:
        train("cifar_resnet20", "digits", epochs=2, runs_dir=str(tmp_path), run_name="phase", datasets=digits16,
              callbacks=[obstacle.callback()], **TINY)
    assert "\n" not in str(failed.value)
    shutil.rmtree(obstacle.path, ignore_errors=True)
    result = train("cifar_resnet20", "digits", epochs=2, runs_dir=str(tmp_path), run_name="phase", resume=True,
                   datasets=digits16, **TINY)
    assert result.metrics["status"] == "completed" and result.metrics["resumed_from_epoch"] == 1
    assert _epochs(tmp_path / "phase" / "history.csv") == [0, 1]
    assert result.history["epoch"] == [0.0, 1.0]


def test_a_loss_diverging_in_the_first_epoch_names_no_missing_file(tmp_path, capsys):
    """No epoch finished: the line says so (and names no checkpoint), the status is 2, metrics.json
    records the divergence, and a warning line came earlier, when the loss exploded."""
    from keras_resnets.cli import main

    code = main(["train", "--epochs", "2", "--lr", "1e12", "--runs-dir", str(tmp_path), "--run-name", "div",
                 *TINY_CLI])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.strip().splitlines() if line.startswith("keras-resnets")]
    assert lines[-1].startswith("keras-resnets train: error: loss became") and "at epoch 1" in lines[-1]
    assert "No epoch finished" in lines[-1] and "last.weights.h5" not in lines[-1]
    assert any("warning: the training loss exploded" in line for line in lines[:-1]) or "batch 1;" in lines[-1]
    metrics = json.load(open(tmp_path / "div" / "metrics.json"))
    assert metrics["status"] == "diverged" and metrics["last_good_epoch"] == 0 and metrics["last_good_weights"] is None
    assert not os.path.exists(tmp_path / "div" / "checkpoints" / "last.weights.h5")
