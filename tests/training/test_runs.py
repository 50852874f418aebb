"""RunConfig / RunDir: config.json's schema, atomic run creation, resume semantics, concurrency, write failures.

Each test names the reliability defect it covers (16.1, 16.2, 16.7, 16.11, concurrent runs, full disk).
"""
import hashlib
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from keras_resnets.runs import RunConfig, RunDir, RunError, RunInUseError, RunWriteError

pytestmark = pytest.mark.tf_only

TINY = dict(model_kwargs={"depth": 8}, image_size=(16, 16), recipe="digits_demo", batch_size=128, verbose=0)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = dict(model="cifar_resnet20", dataset="digits", input_shape=[16, 16, 1], classes=2, class_names=["a", "b"],
              normalization={"mean": [1.0], "std": [2.0]})


@pytest.fixture(scope="module")
def digits16():
    from keras_resnets.data import load_dataset

    return load_dataset("digits", batch_size=128, image_size=(16, 16), augment="crop")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, digits16):
    from keras_resnets.training import train

    runs = tmp_path_factory.mktemp("runs")
    train("cifar_resnet20", "digits", epochs=2, runs_dir=str(runs), run_name="done", datasets=digits16, **TINY)
    return runs


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_run_config_round_trips_and_refuses_unknown_missing_and_newer(tmp_path):
    config = RunConfig(**CONFIG, task="segmentation")
    config.save(tmp_path)
    assert RunConfig.load(tmp_path) == config
    data = json.load(open(tmp_path / "config.json"))
    for change, pattern in ((dict(colour="red"), "unknown key 'colour'"), (dict(schema_version=99), "newer"),
                            (dict(task="detection"), "task 'detection' is unknown")):
        with pytest.raises(RunError, match=pattern):
            RunConfig.from_dict({**data, **change})
    with pytest.raises(RunError, match="lacks the required key 'classes'"):
        RunConfig.from_dict({k: v for k, v in data.items() if k != "classes"})


def test_config_json_has_one_writer():
    """grep: only keras_resnets/runs.py writes config.json."""
    writers = []
    for folder in ("keras_resnets", "examples", "tests"):
        for root, _, files in os.walk(os.path.join(REPO, folder)):
            for name in files:
                if name.endswith(".py") and name != "test_runs.py":
                    text = open(os.path.join(root, name)).read()
                    if '"config.json").write' in text or "config.json', 'w'" in text or '"config.json", "w"' in text:
                        writers.append(name)
    assert writers == []


def test_16_2_failed_train_leaves_no_run_directory(tmp_path, digits16):
    from keras_resnets.training import train

    for kwargs in (dict(model_kwargs={"depth": 7}), dict(model_kwargs={"placemnt": "x"}),
                   dict(dataset="no_such_dataset_xyz"), dict(activation="nope")):
        kwargs = {**TINY, "epochs": 1, **kwargs}
        dataset = kwargs.pop("dataset", "digits")
        with pytest.raises(Exception):
            train("cifar_resnet20", dataset, runs_dir=str(tmp_path), run_name="bad", **kwargs)
        assert os.listdir(tmp_path) == [], kwargs
    result = train("cifar_resnet20", "digits", epochs=1, runs_dir=str(tmp_path), run_name="bad", datasets=digits16,
                   **TINY)  # the name is not blocked
    assert result.metrics["status"] == "completed"


def test_16_1_resume_of_a_finished_run_keeps_its_model(finished_run, digits16, capsys):
    from keras_resnets.training import train

    run = finished_run / "done"
    before = {name: _digest(run / name) for name in ("final.keras", "best.keras", "metrics.json", "history.csv")}
    result = train("cifar_resnet20", "digits", epochs=2, runs_dir=str(finished_run), run_name="done", resume=True,
                   datasets=digits16, **TINY)
    assert "already finished its 2 epochs; nothing to do" in capsys.readouterr().out
    assert {name: _digest(run / name) for name in before} == before
    assert result.metrics["epochs"] == 2


def test_16_1_continue_epochs_trains_more_epochs_explicitly(finished_run, digits16):
    import shutil

    from keras_resnets.training import train

    shutil.copytree(finished_run / "done", finished_run / "more")
    result = train("cifar_resnet20", "digits", epochs=2, runs_dir=str(finished_run), run_name="more", resume=True,
                   continue_epochs=1, datasets=digits16, **TINY)
    assert result.metrics["epochs"] == 3 and result.metrics["resumed_from_epoch"] == 2
    assert RunConfig.load(finished_run / "more").epochs == 3
    assert len(open(finished_run / "more" / "history.csv").read().strip().splitlines()) == 1 + 3


def test_16_7_resume_with_another_config_names_the_keys(finished_run, capsys):
    from keras_resnets.cli import main

    code = main(["train", "--runs-dir", str(finished_run), "--run-name", "done", "--resume", "--recipe", "digits_demo",
                 "--model-arg", "depth=14", "--image-size", "16", "--batch-size", "128", "--epochs", "2"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "differs in model_kwargs (was {\"depth\": 8}, now {\"depth\": 14})" in err


def test_a_damaged_model_file_is_named_as_damaged(finished_run, capsys):
    """A truncated best.keras: evaluate RUN and train --init-from RUN say the file is damaged (Keras says
    "File not found"), in one line with status 2."""
    import shutil

    from keras_resnets.cli import main

    broken = finished_run / "broken"
    shutil.copytree(finished_run / "done", broken)
    size = os.path.getsize(broken / "best.keras")
    with open(broken / "best.keras", "r+b") as f:
        f.truncate(size // 2)
    for command in (["evaluate", str(broken), "--limit", "8"],
                    ["train", "--init-from", str(broken), "--runs-dir", str(finished_run), "--run-name", "staged",
                     "--epochs", "1", "--image-size", "16", "--model-arg", "depth=8", "--recipe", "digits_demo"]):
        code = main(command)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        assert f"model file '{broken / 'best.keras'}' exists but is damaged" in err and "not found" not in err
    assert not (finished_run / "staged").exists()


def _create(runs_dir, barrier, queue):
    config = RunConfig(**CONFIG)
    barrier.wait()
    try:
        RunDir.create(runs_dir, "race", config)
        queue.put("won")
    except RunError as err:
        queue.put(str(err))


def test_two_processes_creating_the_same_run_exactly_one_wins(tmp_path):
    context = multiprocessing.get_context("fork")
    count = 6
    barrier, queue = context.Barrier(count), context.Queue()
    processes = [context.Process(target=_create, args=(str(tmp_path), barrier, queue)) for _ in range(count)]
    for p in processes:
        p.start()
    outcomes = [queue.get(timeout=60) for _ in processes]
    for p in processes:
        p.join(timeout=60)
    assert outcomes.count("won") == 1
    assert all("already exists" in o and "\n" not in o for o in outcomes if o != "won")
    assert sorted(os.listdir(tmp_path)) == ["race"]  # no temporary folder left behind


def test_a_creator_that_loses_the_race_is_told_so_not_to_resume(tmp_path):
    """train checks the name early, loads data, builds, then creates: a run another process created in
    between, and is training now, is reported as created just now (not as one to --resume)."""
    RunDir.check_free(str(tmp_path), "race")  # the loser's early check passes
    winner = RunDir.create(str(tmp_path), "race", RunConfig(**CONFIG))
    try:
        with pytest.raises(RunError) as lost:
            RunDir.create(str(tmp_path), "race", RunConfig(**CONFIG))
    finally:
        winner.release()
    assert "created by another process just now" in str(lost.value) and "resume" not in str(lost.value)
    assert sorted(os.listdir(tmp_path)) == ["race"]


def test_a_run_in_use_refuses_a_second_process(tmp_path, digits16):
    from keras_resnets.training import train

    holder = RunDir.create(str(tmp_path), "busy", RunConfig(**CONFIG))
    try:
        with pytest.raises(RunInUseError, match="in use by another process"):
            train("cifar_resnet20", "digits", epochs=1, runs_dir=str(tmp_path), run_name="busy", resume=True,
                  datasets=digits16, **TINY)
    finally:
        holder.release()


def test_unwritable_runs_dir_is_one_line(tmp_path, capsys):
    from keras_resnets.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["train", "--runs-dir", str(blocker / "runs"), "--run-name", "x", "--epochs", "1", "--image-size", "8",
                 "--model-arg", "depth=8", "--recipe", "digits_demo"])
    err = capsys.readouterr().err.strip()
    assert code != 0 and len(err.splitlines()) == 1 and "cannot create run directory" in err


def test_full_disk_mid_run_is_one_line_and_keeps_earlier_checkpoints(tmp_path):
    """The file-size limit stands in for a full disk after epoch 1: epoch 2's writes fail."""
    pythonpath = os.pathsep.join(p for p in (REPO, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath}
    child = os.path.join(os.path.dirname(__file__), "resume_child.py")
    done = subprocess.run([sys.executable, child, str(tmp_path), "full", "--full-disk-after-epoch", "0"], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot write") and "1 finished epoch is kept" in last
    run = RunDir(str(tmp_path / "full"))
    import keras

    import keras_resnets.layers  # noqa: F401

    keras.saving.load_model(run.best_model)  # epoch 1's best model is whole
    assert json.load(open(os.path.join(run.backup, "training_metadata.json")))["epoch"] >= 1


def test_16_11_progress_is_one_line_per_epoch_when_stdout_is_not_a_terminal(tmp_path, digits16, capsys):
    from keras_resnets.training import train
    from keras_resnets.training.steps import resolve_verbose

    assert resolve_verbose("auto") == 2  # pytest's captured stdout is not a terminal
    train("cifar_resnet20", "digits", epochs=2, runs_dir=str(tmp_path), run_name="log", datasets=digits16,
          **{**TINY, "verbose": "auto"})
    out = capsys.readouterr().out
    assert "\r" not in out and "\b" not in out
    assert [line for line in out.splitlines() if line.startswith("Epoch ")] == ["Epoch 1/2", "Epoch 2/2"]
    assert len(out.splitlines()) <= 8


def test_resume_comparison_names_the_keys_and_compares_as_json_stores():
    """check_resumable: the one comparison train's and tune's resume make (tuples equal the stored lists)."""
    from keras_resnets.runs import check_resumable

    check_resumable("runs/r", {"image_size": [32, 32], "lr": 0.1}, {"image_size": (32, 32), "lr": 0.1})
    with pytest.raises(RunError, match=r"cannot resume 'runs/r': its config differs in lr \(was 0.1, now 0.2\); "):
        check_resumable("runs/r", {"image_size": [32, 32], "lr": 0.1}, {"image_size": (32, 32), "lr": 0.2})


@pytest.mark.parametrize("augment, mirrorable, said", [("crop_flip", False, True), ("crop_flip_color_blur", False, True),
                                                        ("crop", False, False), ("crop_flip", True, False)])
def test_the_plan_line_says_when_a_flip_policy_does_not_mirror(augment, mirrorable, said):
    from keras_resnets.training.steps import describe_recipe

    line = describe_recipe(RunConfig(**CONFIG, augment=augment), mirrorable=mirrorable)
    assert ("(no flip: a mirrored digits image changes its label)" in line) == said, line
