"""A run SIGKILLed mid-epoch and resumed ends with exactly the weights of an uninterrupted run."""
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

CHILD = os.path.join(os.path.dirname(__file__), "resume_child.py")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run(*args, timeout=480):
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath}
    return subprocess.run([sys.executable, CHILD, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _weights(path):
    import keras

    import keras_resnets.layers  # noqa: F401  (registers the custom layers for loading)

    return [np.asarray(w) for w in keras.saving.load_model(path).get_weights()]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("task", ["classification", "segmentation"])
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path, task):
    """SIGKILL mid-epoch, then --resume: the final weights equal an uninterrupted run's, for both tasks."""
    runs = str(tmp_path)
    reference = _run(runs, "reference", "--task", task)
    assert reference.returncode == 0, reference.stderr[-2000:]

    killed = _run(runs, "crashy", "--kill-at-epoch", "1", "--kill-at-batch", "3", "--task", task)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert not os.path.exists(os.path.join(runs, "crashy", "final.keras"))
    assert os.path.exists(os.path.join(runs, "crashy", "checkpoints", "backup", "training_metadata.json"))

    resumed = _run(runs, "crashy", "--resume", "--task", task)
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    expected = _weights(os.path.join(runs, "reference", "final.keras"))
    actual = _weights(os.path.join(runs, "crashy", "final.keras"))
    assert len(expected) == len(actual)
    for e, a in zip(expected, actual):
        np.testing.assert_array_equal(e, a)
    with open(os.path.join(runs, "crashy", "history.csv")) as f:
        assert len(f.read().strip().splitlines()) == 1 + 3  # header + one row per epoch, none repeated
