"""Multi-process input (issue 13): with ``--distribute data_parallel`` each process streams only its
shard of the files. Two JAX processes on loopback see disjoint halves that together are all of it."""
import json
import os
import sys

import numpy as np

from tests.distributed.test_data_parallel import RUN_DEADLINE_S, child_env, free_port, run_children

HERE = os.path.dirname(os.path.abspath(__file__))
CHILD = os.path.join(HERE, "input_sharding_child.py")
LEVELS = [20 + 8 * k for k in range(24)]  # one flat grey level per file, 12 per class


def write_level_folder(root) -> str:
    from PIL import Image

    for k, level in enumerate(LEVELS):
        folder = os.path.join(root, "dark" if k < 12 else "light")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(np.full((12, 12, 3), level, np.uint8)).save(os.path.join(folder, f"{level:03d}.png"))
    return str(root)


def test_two_processes_stream_disjoint_halves_of_the_files(tmp_path):
    from keras_resnets.data.streaming import holdout_indices, list_image_folder

    folder = write_level_folder(tmp_path / "levels")
    port = free_port()
    cluster = dict(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}", KERAS_DISTRIBUTION_NUM_PROCESSES=2)
    commands = [([sys.executable, CHILD, folder, str(tmp_path / "runs"), "sharded", str(tmp_path / f"p{i}.json")],
                 child_env(**cluster, KERAS_DISTRIBUTION_PROCESS_ID=i)) for i in range(2)]
    results, _ = run_children(commands, RUN_DEADLINE_S)
    for i, (code, output) in enumerate(results):
        assert code == 0, f"process {i} failed:\n{output[-3000:]}"

    seen = [json.load(open(tmp_path / f"p{i}.json")) for i in range(2)]
    files, labels, _ = list_image_folder(folder)
    train_idx, _ = holdout_indices(labels, 1 / 3, 0)
    train_levels = {int(os.path.basename(f)[:3]) for f in files[train_idx]}
    assert len(train_levels) == 16
    halves = [set(s["levels"]) for s in seen]
    for s, half in zip(seen, halves):
        assert s["batch_size"] == 2 and s["steps"] == 4  # global batch 4 = 2 processes x 2
        assert len(s["levels"]) == len(half) == 8  # each file once per epoch
    assert not halves[0] & halves[1]
    assert halves[0] | halves[1] == train_levels
    for run in ("sharded", "sharded-worker1"):
        config = json.load(open(tmp_path / "runs" / run / "config.json"))
        assert config["steps_per_epoch"] == 4
        assert json.load(open(tmp_path / "runs" / run / "metrics.json"))["status"] == "completed"
