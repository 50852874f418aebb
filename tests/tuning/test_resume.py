"""A search killed mid-trial resumes without re-running its finished trials, and the interrupted trial
continues from its last finished epoch."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.tuning.conftest import IMAGE_SIZE, SMALL_SPACE, TINY_MODEL_KWARGS, tiny_tune_args

pytestmark = pytest.mark.tf_only

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


EPOCHS = 2


def tune_command(runs_dir: str, run_name: str) -> list:
    """The ``keras-resnets tune`` command line of ``tiny_tune_args(max_epochs=EPOCHS)``."""
    space_args = [a for key, values in SMALL_SPACE.items() for a in ("--space-arg", f"{key}={','.join(values)}")]
    return [sys.executable, "-m", "keras_resnets.cli", "tune", "--runs-dir", runs_dir, "--run-name", run_name,
            "--tuner", "grid", "--max-epochs", str(EPOCHS), "--image-size", "x".join(map(str, IMAGE_SIZE)),
            *[a for k, v in TINY_MODEL_KWARGS.items() for a in ("--model-arg", f"{k}={v}")], *space_args]


def subprocess_env(**extra) -> dict:
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath,
            "PYTHONUNBUFFERED": "1", **extra}


def _trial_status(tune_dir: str, trial_id: str):
    path = os.path.join(tune_dir, f"trial_{trial_id}", "trial.json")
    try:
        with open(path) as f:
            return json.load(f)["status"]
    except (OSError, ValueError, KeyError):  # not written yet, or caught mid-write
        return None


@pytest.mark.timeout(400)
def test_killed_search_resumes_without_rerunning_finished_trials(tmp_path, digits, capsys):
    """Killed during trial 1's second epoch: trial 0 is kept, trial 1 resumes at epoch 2."""
    from keras_resnets.tuning import tune

    tune_dir = os.path.join(tmp_path, "search", "tune")
    child = subprocess.Popen(tune_command(str(tmp_path), "search"), env=subprocess_env(), cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        # Kill while trial 1 runs, after its first epoch was backed up: trial 0 finished, trial 1 not.
        backup = os.path.join(tune_dir, "trial_1", "backup", "training_metadata.json")
        while not (_trial_status(tune_dir, "0") == "COMPLETED" and _trial_status(tune_dir, "1") == "RUNNING"
                   and os.path.exists(backup)):
            assert child.poll() is None, f"the search ended before it could be killed:\n{child.stdout.read()}"
            assert time.monotonic() < deadline, "trial 1 never backed up an epoch"
            time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    finished_trial = open(os.path.join(tune_dir, "trial_0", "trial.json")).read()
    assert not os.path.exists(os.path.join(tune_dir, "trial_3"))

    result = tune(**tiny_tune_args(datasets=digits, runs_dir=str(tmp_path), run_name="search", resume=True,
                                   max_epochs=EPOCHS))

    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("trial ")]
    assert [line.split()[1].split("/")[0] for line in progress] == ["1", "2", "3"]
    assert "resumed at epoch 2" in progress[0] and "resumed" not in progress[1] + progress[2]
    with open(os.path.join(tune_dir, "trial_1", "epochs.json")) as f:
        assert json.load(f) == {"epochs": EPOCHS, "resumed_at_epoch": 1}
    assert not os.path.exists(os.path.join(tune_dir, "trial_1", "backup", "latest.weights.h5"))
    assert open(os.path.join(tune_dir, "trial_0", "trial.json")).read() == finished_trial
    cells = [tuple(t["values"][k] for k in SMALL_SPACE) for t in result.trials]
    assert len(cells) == 4 and len(set(cells)) == 4
    assert all(t["status"] == "COMPLETED" for t in result.trials)
