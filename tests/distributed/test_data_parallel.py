"""Data-parallel training on loopback: two JAX processes against one, and bad clusters failing fast.

The multi-process tests start their own child processes (``train_child.py``, the CLI) on 127.0.0.1
with free ports and kill every child they started when the deadline passes.
"""
import contextlib
import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CHILD = os.path.join(HERE, "train_child.py")
RUN_DEADLINE_S = 420  # three JAX processes compiling on two shared cores; a quiet machine needs ~90 s
ERROR_DEADLINE_S = 120
# Distributed and single-process losses differ only by float summation order (all-reduce vs one
# device): they agreed to every digit Keras prints (0.9827, 0.2322); this bound still catches a
# wrong batch split or per-process BatchNormalization statistics.
LOSS_RTOL = 1e-4


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**cluster) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERAS_DISTRIBUTION_")}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=REPO + os.pathsep + env.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", JAX_PLATFORMS="cpu")
    env.update({k: str(v) for k, v in cluster.items()})
    return env


def run_children(commands, deadline_s: float):
    """Run ``(argv, env)`` children concurrently; kill them all at the deadline.

    Returns:
        ``[(returncode, output)]`` in the order of ``commands``, and the seconds they took.
    """
    started = time.monotonic()
    children = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                 start_new_session=True) for argv, env in commands]
    results = []
    try:
        for child in children:
            remaining = max(1.0, deadline_s - (time.monotonic() - started))
            try:
                output, _ = child.communicate(timeout=remaining)
            except subprocess.TimeoutExpired:
                pytest.fail(f"child {child.args} still running after {deadline_s} s")
            results.append((child.returncode, output))
    finally:
        for child in children:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
    return results, time.monotonic() - started


def read_losses(run_dir: str) -> list:
    with open(os.path.join(run_dir, "history.csv")) as f:
        return [float(row["loss"]) for row in csv.DictReader(f)]


def load_weights(path: str) -> list:
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    runs, weights = tmp_path / "runs", tmp_path / "weights"
    weights.mkdir()
    reference_weights = tmp_path / "reference_weights"
    reference_weights.mkdir()
    port = free_port()
    worker = [sys.executable, CHILD, str(runs), "dp", str(weights), "--distribute", "data_parallel"]
    cluster = dict(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}", KERAS_DISTRIBUTION_NUM_PROCESSES=2)
    results, _ = run_children(
        [
            (worker, child_env(**cluster, KERAS_DISTRIBUTION_PROCESS_ID=0)),
            (worker, child_env(**cluster, KERAS_DISTRIBUTION_PROCESS_ID=1)),
            ([sys.executable, CHILD, str(runs), "single", str(reference_weights)], child_env()),
        ],
        RUN_DEADLINE_S,
    )
    for name, (code, output) in zip(("process 0", "process 1", "single process"), results):
        assert code == 0, f"{name} failed:\n{output[-3000:]}"

    # Both processes took the same 20 full batches of 64 per epoch as the single process.
    for run in ("dp", "dp-worker1", "single"):
        assert json.load(open(runs / run / "config.json"))["steps_per_epoch"] == 20, run

    for epoch in range(2):
        first = load_weights(weights / f"epoch{epoch}-process0.npz")
        second = load_weights(weights / f"epoch{epoch}-process1.npz")
        assert len(first) == len(second) > 0
        for a, b in zip(first, second):
            np.testing.assert_array_equal(a, b, err_msg=f"processes disagree after epoch {epoch}")

    distributed_losses = read_losses(runs / "dp")
    assert distributed_losses == read_losses(runs / "dp-worker1")
    single_losses = read_losses(runs / "single")
    assert len(distributed_losses) == len(single_losses) == 2
    np.testing.assert_allclose(distributed_losses, single_losses, rtol=LOSS_RTOL)
    assert distributed_losses[1] < distributed_losses[0]  # it learned something


@pytest.mark.parametrize("process_id", [0, 1], ids=["peer_never_starts", "coordinator_unreachable"])
def test_a_cluster_that_cannot_form_fails_within_its_timeout(tmp_path, process_id):
    argv = [sys.executable, "-m", "keras_resnets.cli", "train", "--distribute", "data_parallel",
            "--runs-dir", str(tmp_path), "--batch-size", "64", "--epochs", "1", "--quiet"]
    env = child_env(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{free_port()}", KERAS_DISTRIBUTION_NUM_PROCESSES=2,
                    KERAS_DISTRIBUTION_PROCESS_ID=process_id, KERAS_RESNETS_CLUSTER_TIMEOUT=5)
    [(code, output)], seconds = run_children([(argv, env)], ERROR_DEADLINE_S)
    assert code == 3, output[-3000:]
    assert "did not form within 5 s" in output and f"this is process {process_id}" in output
    assert seconds < ERROR_DEADLINE_S


def test_cli_rejects_a_global_batch_the_processes_cannot_share(tmp_path):
    argv = [sys.executable, "-m", "keras_resnets.cli", "train", "--distribute", "data_parallel",
            "--runs-dir", str(tmp_path), "--batch-size", "63", "--epochs", "1"]
    env = child_env(KERAS_DISTRIBUTION_JOB_ADDRESSES="127.0.0.1:1", KERAS_DISTRIBUTION_NUM_PROCESSES=2,
                    KERAS_DISTRIBUTION_PROCESS_ID=0)
    [(code, output)], _ = run_children([(argv, env)], ERROR_DEADLINE_S)
    assert code == 2, output[-3000:]
    lines = [line for line in output.splitlines() if "keras-resnets train: error:" in line]
    assert lines == ["keras-resnets train: error: global batch_size 63 is not divisible by the 2 processes; "
                     "use a multiple of 2, e.g. 62 or 64"]
    assert not os.listdir(tmp_path)  # nothing written
