"""train(): run directory, argument errors, NaN handling, no silent overwrite, CLI error lines."""
import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.tf_only

TINY = dict(model_kwargs={"depth": 8}, image_size=(16, 16), recipe="digits_demo", batch_size=128, verbose=0)


@pytest.fixture(scope="module")
def digits16():
    from keras_resnets.data import load_dataset

    return load_dataset("digits", batch_size=128, image_size=(16, 16), augment="crop")


def test_run_directory_has_every_artifact(tmp_path, digits16):
    from keras_resnets.training import train

    result = train("cifar_resnet20", "digits", epochs=2, runs_dir=str(tmp_path), run_name="run",
                   datasets=digits16, **TINY)
    for key in ("config", "best_model", "final_model", "history", "metrics", "curves", "tensorboard"):
        assert os.path.exists(result.paths[key]), key
    config = json.load(open(result.paths["config"]))
    assert config["model"] == "cifar_resnet20" and config["model_kwargs"] == {"depth": 8}
    assert config["input_shape"] == [16, 16, 1] and config["classes"] == 10
    assert config["classifier_activation"] == "softmax" and len(config["normalization"]["std"]) == 1
    metrics = json.load(open(result.paths["metrics"]))
    assert metrics["status"] == "completed" and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert result.history["lr"][-1] < result.history["lr"][0]  # cosine decays

    with pytest.raises(ValueError, match="already exists.*resume"):
        train("cifar_resnet20", "digits", epochs=2, runs_dir=str(tmp_path), run_name="run",
              datasets=digits16, **TINY)


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        (dict(model="resnet_9000"), r"unknown model 'resnet_9000'"),
        (dict(augment="mixup"), r"'mixup'.*allowed: none, crop, crop_flip"),
        (dict(lr_ratio="5:3", schedule="lr_ratio"), r"malformed lr ratio '5:3'"),
        (dict(lr_ratio="a:b:c", schedule="lr_ratio"), r"malformed lr ratio 'a:b:c'"),
        (dict(epochs=0), r"epochs must be a positive integer; got 0"),
        (dict(epochs=-3), r"epochs must be a positive integer; got -3"),
        (dict(batch_size=0), r"batch_size must be a positive integer; got 0"),
        (dict(recipe="he2017"), r"unknown recipe 'he2017'; allowed: he2016_cifar"),
        (dict(schedule="step"), r"unknown schedule 'step'; allowed"),
        (dict(precision="float8"), r"unknown precision 'float8'; allowed: float32, mixed_bfloat16"),
        (dict(xla="sometimes"), r"unknown xla mode 'sometimes'; allowed: auto, on, off"),
        (dict(dataset="no_such_dataset_xyz"), r"unknown dataset 'no_such_dataset_xyz'"),
    ],
)
def test_bad_arguments_fail_before_any_work(tmp_path, overrides, pattern):
    from keras_resnets.training import train

    kwargs = {**TINY, "epochs": 1, **overrides}
    model = kwargs.pop("model", "cifar_resnet20")
    dataset = kwargs.pop("dataset", "digits")
    with pytest.raises(ValueError, match=pattern):
        train(model, dataset, runs_dir=str(tmp_path), run_name="bad", **kwargs)
    assert not (tmp_path / "bad" / "config.json").exists() or dataset != "digits"


def test_nan_loss_stops_with_clear_error_and_keeps_last_good_checkpoint(tmp_path, digits16):
    import keras

    from keras_resnets.training import TrainingDivergedError, train

    class PoisonWeights(keras.callbacks.Callback):
        """Turn one kernel into NaN in the middle of the second epoch."""

        def __init__(self):
            super().__init__()
            self.epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_begin(self, batch, logs=None):
            if self.epoch == 1 and batch == 3:
                kernel = next(w for w in self.model.trainable_weights if w.path.endswith("kernel"))
                kernel.assign(np.full(kernel.shape, np.nan, dtype="float32"))

    with pytest.raises(TrainingDivergedError, match=r"loss became nan at epoch 2.*last good weights \(epoch 1\)"):
        train("cifar_resnet20", "digits", epochs=3, runs_dir=str(tmp_path), run_name="nan", datasets=digits16,
              callbacks=[PoisonWeights()], **TINY)
    run = tmp_path / "nan"
    metrics = json.load(open(run / "metrics.json"))
    assert metrics["status"] == "diverged" and metrics["last_good_epoch"] == 1
    meta = json.load(open(run / "checkpoints" / "backup" / "training_metadata.json"))
    assert meta["epoch"] == 1

    import h5py

    with h5py.File(run / "checkpoints" / "last.weights.h5") as f:
        arrays = []
        f.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays)


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--lr-ratio", "5:3", "--schedule", "lr_ratio"], "malformed lr ratio '5:3'"),
        (["--epochs", "0"], "epochs must be a positive integer; got 0"),
        (["--model", "nope"], "unknown model 'nope'"),
        (["--dataset", "cifar10", "--data-dir", "EMPTY"], "tfds build cifar10"),
    ],
)
def test_cli_prints_one_line_without_traceback(tmp_path, capsys, argv, expected):
    from keras_resnets.cli import main

    argv = [a.replace("EMPTY", str(tmp_path / "tfds")) for a in argv]
    code = main(["train", "--runs-dir", str(tmp_path), *argv])
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert expected in err and "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_every_cli_choice_list_is_read_from_its_owner():
    """No choice list exists twice: every choices= of train, tune and export is an OwnedChoices naming the
    module that owns the list (a few fixed numeric ones aside), and reads exactly that list."""
    import importlib

    from keras_resnets.cli import build_parser
    from keras_resnets.cli_args import OwnedChoices

    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    checked = 0
    for name in ("train", "tune", "export"):
        for action in sub.choices[name]._actions:
            if action.choices is None or action.dest in ("channels", "fit_verbose"):
                continue
            assert isinstance(action.choices, OwnedChoices), (name, action.dest)
            module, _, attr = action.choices.owner.partition(":")
            owner = getattr(importlib.import_module(module), attr)
            assert list(action.choices) == list(owner() if callable(owner) else owner)
            checked += 1
    assert checked >= 12
    assert "shapes_segmentation" in sub.choices["train"]._option_string_actions["--recipe"].choices


def test_train_and_tune_take_every_shared_cli_option_as_a_keyword():
    """One option schema: each shared CLI option is a keyword of train() (and of tune() for tune's)."""
    import argparse
    import inspect

    from keras_resnets.cli_args import keywords
    from keras_resnets.training import cli as train_cli
    from keras_resnets.training import train
    from keras_resnets.tuning import cli as tune_cli
    from keras_resnets.tuning.search import tune

    for flags, function in ((train_cli.FLAGS, train), (tune_cli.SHARED_FLAGS, tune)):
        parser = argparse.ArgumentParser()
        train_cli.add_options(parser, flags)
        names = set(keywords(parser.parse_args([]), flags))
        assert names <= set(inspect.signature(function).parameters), names - set(inspect.signature(function).parameters)


def test_the_shared_data_and_run_options_are_the_fields_of_their_options_objects():
    """The CLI's data and run options are exactly DataOptions' and RunOptions' fields, which train and tune share."""
    import argparse
    import dataclasses

    from keras_resnets.cli_args import DATA_FLAGS, RUN_FLAGS, add_options, keywords
    from keras_resnets.runs import DataOptions, RunOptions

    for flags, options in ((DATA_FLAGS, DataOptions), (RUN_FLAGS, RunOptions)):
        parser = argparse.ArgumentParser()
        add_options(parser, flags)
        parsed = keywords(parser.parse_args([]), flags)
        assert set(parsed) == {f.name for f in dataclasses.fields(options)}
        assert options(**parsed) == options()  # the CLI's defaults are the options' own
