"""KerasTuner's chief/worker mode on loopback: a chief and two workers share one search directory."""
import json
import re
import socket
import subprocess
import time

import pytest

from tests.tuning.conftest import SMALL_SPACE
from tests.tuning.test_resume import REPO, subprocess_env, tune_command

pytestmark = pytest.mark.tf_only

PROCESS_TIMEOUT = 240


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.timeout(PROCESS_TIMEOUT + 60)
def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    port = free_port()
    command = tune_command(str(tmp_path), "distributed")
    processes = {}
    try:
        for tuner_id in ("chief", "tuner0", "tuner1"):
            env = subprocess_env(KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1",
                                 KERASTUNER_ORACLE_PORT=str(port))
            processes[tuner_id] = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.PIPE,
                                                   stderr=subprocess.STDOUT, text=True)
        outputs = {}
        deadline = time.monotonic() + PROCESS_TIMEOUT
        for tuner_id, process in processes.items():
            outputs[tuner_id], _ = process.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
    for tuner_id, process in processes.items():
        assert process.returncode == 0, f"{tuner_id} failed:\n{outputs[tuner_id][-3000:]}"

    ran = [re.match(r"trial (\d+)/\d+ \[(tuner\d)\]", line).groups()
           for tuner_id in ("tuner0", "tuner1") for line in outputs[tuner_id].splitlines()
           if line.startswith("trial ")]
    trial_ids = [trial_id for trial_id, _ in ran]
    assert sorted(trial_ids) == ["0", "1", "2", "3"], ran  # every trial once, across both workers
    assert {worker for _, worker in ran} <= {"tuner0", "tuner1"}

    tune_dir = tmp_path / "distributed" / "tune"
    trials = [json.loads((tune_dir / f"trial_{i}" / "trial.json").read_text()) for i in range(4)]
    assert all(t["status"] == "COMPLETED" for t in trials)
    cells = {tuple(t["hyperparameters"]["values"][k] for k in SMALL_SPACE) for t in trials}
    assert len(cells) == 4
    assert not (tune_dir / "trial_4").exists()
    assert (tune_dir / "heatmap.png").exists() and "Search: cifar_resnet20" in outputs["chief"]
