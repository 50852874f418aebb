"""Segmentation runs end to end on the generated shapes: train (CLI), artifacts, staged training
(--init-from/--freeze), tune with val_mean_iou, export with no extra flags, resume of a finished run."""
import json
import os
import re

import numpy as np
import pytest

from keras_resnets.runs import RunConfig, RunDir

pytestmark = pytest.mark.tf_only

SHAPES = ["--dataset-arg", "num_train=48", "--dataset-arg", "num_validation=32", "--dataset-arg", "max_shapes=3",
          "--image-size", "32"]
NARROW = ["--model-arg", 'backbone_kwargs={"stage_widths": [8, 16, 32, 64]}']
SHAPES_KW = {"num_train": 48, "num_validation": 32, "max_shapes": 3}
NARROW_KW = {"backbone_kwargs": {"stage_widths": [8, 16, 32, 64]}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return tmp_path_factory.mktemp("segruns")


@pytest.fixture(scope="module")
def front_end(runs):
    """``keras-resnets train --model dilated_resnet18_seg --dataset shapes`` (narrow, no context: a front-end)."""
    from keras_resnets.cli import main

    code = main(["train", "--model", "dilated_resnet18_seg", "--dataset", "shapes", *SHAPES, *NARROW, "--model-arg",
                 "context=null", "--epochs", "3", "--lr", "0.1", "--runs-dir", str(runs), "--run-name", "front",
                 "--quiet"])
    assert code == 0
    return RunDir(str(runs / "front"))


def test_cli_segmentation_run_writes_every_artifact(front_end, capsys):
    config = RunConfig.load(front_end.path)
    assert config.task == "segmentation" and config.classifier_activation is None and config.recipe == "shapes_segmentation"
    assert config.dataset_kwargs == SHAPES_KW
    header = open(front_end.history).readline().strip().split(",")
    assert {"mean_iou", "val_mean_iou", "pixel_accuracy", "val_pixel_accuracy", "lr"} <= set(header)
    metrics = json.load(open(front_end.metrics))
    assert metrics["status"] == "completed" and 0.0 <= metrics["test_mean_iou"] <= 1.0
    assert list(metrics["test_per_class_iou"]) == ["background", "circle", "rectangle", "triangle"]
    assert 0.0 < metrics["test_mean_iou_constant_prediction"] < 0.5
    assert 0.0 <= metrics["test_pixel_accuracy"] <= 1.0 and metrics["best_val_mean_iou"] is not None
    for png in (front_end.curves, front_end.predictions):
        with open(png, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert os.path.isfile(front_end.best_model) and os.path.isfile(front_end.final_model)


def test_mean_iou_is_in_the_progress_line(runs, capsys):
    from keras_resnets.cli import main

    code = main(["train", "--model", "dilation8_context", "--dataset", "shapes", *SHAPES, "--dataset-arg",
                 "num_train=16", "--model-arg", "fc_width=16", "--epochs", "1", "--runs-dir", str(runs),
                 "--run-name", "vgg"])
    out = capsys.readouterr().out
    assert code == 0
    epoch_line = next(line for line in out.splitlines() if "val_mean_iou" in line)
    assert " - mean_iou: " in epoch_line and "\r" not in out  # one line per epoch: stdout is not a terminal
    metrics = json.load(open(runs / "vgg" / "metrics.json"))
    assert metrics["model"] == "dilation8_context"
    # one epoch on 16 images: background everywhere, and the summary says what that score means
    assert metrics["test_mean_iou"] <= metrics["test_mean_iou_constant_prediction"] + 0.01, metrics
    assert "is no better than predicting the most frequent class for every pixel" in out


@pytest.mark.parametrize("recipe, explodes", [(None, False), ("shapes_segmentation", True)])
def test_vgg_front_end_trains_under_its_recipe_and_an_exploding_loss_warns_at_once(runs, capsys, recipe, explodes):
    """dilation8_context (VGG-16, no batch normalisation) defaults to dilation_shapes (Adam 1e-4); under
    the segmentation recipe (Adam 1e-2) its loss explodes in the first epoch, and one warning line says so."""
    from keras_resnets.cli import main

    name = f"vgg-{recipe}"
    code = main(["train", "--model", "dilation8_context", "--dataset", "shapes", *SHAPES, "--dataset-arg",
                 "num_train=32", "--batch-size", "8", "--model-arg", "fc_width=16", "--epochs", "1",
                 "--runs-dir", str(runs), "--run-name", name, "--quiet", *(["--recipe", recipe] if recipe else [])])
    err = capsys.readouterr().err
    assert code == 0
    warnings = [line for line in err.splitlines() if "warning: the training loss exploded" in line]
    assert len(warnings) == (1 if explodes else 0), err[-2000:]
    assert warnings == [] or " at epoch 1, batch " in warnings[0]
    config = RunConfig.load(runs / name)
    assert config.recipe == (recipe or "dilation_shapes")


def _validation_miou(model, data) -> float:
    from keras_resnets.metrics import MeanIoU

    metric = MeanIoU(4)
    for images, masks in data.validation:
        metric.update_state(masks, model(images, training=False))
    return float(metric.result())


def test_staged_context_starts_from_the_front_end_and_trains_only_the_context(front_end, runs):
    """Yu & Koltun's stage 2: the identity-initialised context module on the frozen front-end; at
    initialisation the staged model segments as the front-end does (mIoU within 0.02)."""
    import keras

    import keras_resnets.layers  # noqa: F401
    from keras_resnets.data import registry
    from keras_resnets.training import build_model, train

    result = train("dilated_resnet18_seg", "shapes", model_kwargs={**NARROW_KW, "context": "basic"},
                   dataset_kwargs=SHAPES_KW, image_size=(32, 32), epochs=1, init_from=front_end.path,
                   freeze="backbone", runs_dir=str(runs), run_name="staged", verbose=0)
    config = RunConfig.load(result.run_dir)
    assert config.init_from == front_end.path and config.freeze == "backbone"
    staged_at_init = build_model(config)
    frozen = {layer.name for layer in staged_at_init.layers if layer.weights and not layer.trainable}
    trainable = {layer.name for layer in staged_at_init.layers if layer.weights and layer.trainable}
    assert "scores" in frozen and "stem_conv" in "".join(frozen)
    assert trainable and all(name.startswith("context") for name in trainable)
    data = registry.load("shapes", SHAPES_KW, batch_size=16, image_size=(32, 32), seed=0)
    front = keras.saving.load_model(front_end.best_model)
    assert abs(_validation_miou(staged_at_init, data) - _validation_miou(front, data)) <= 0.02


def test_tune_segmentation_with_val_mean_iou(runs):
    from keras_resnets.tuning import tune

    result = tune("dilated_resnet18_seg", "shapes", space={"lr": [0.02, 0.1]}, tuner="grid", max_epochs=1,
                  model_kwargs={**NARROW_KW, "context": None}, dataset_kwargs=SHAPES_KW, image_size=(32, 32),
                  runs_dir=str(runs), run_name="tuned")
    search = json.load(open(runs / "tuned" / "tune" / "search.json"))
    assert search["objective"] == "val_mean_iou" and search["task"] == "segmentation"
    assert len(result.trials) == 2 and all(0.0 <= t["score"] <= 1.0 for t in result.trials)
    best = json.load(open(result.paths["best_config.json"]))
    assert best["dataset_kwargs"] == SHAPES_KW and "--dataset-arg" in best["command"]


def test_tune_without_a_space_searches_the_tasks_default(runs):
    """``keras-resnets tune --model dilated_resnet18_seg --dataset shapes --max-trials 4`` (README): no
    ``--space`` means the task's space, which segmentation data (not augmented) can take."""
    from keras_resnets.cli import main
    from keras_resnets.tuning.space import SPACES

    code = main(["tune", "--model", "dilated_resnet18_seg", "--dataset", "shapes", *SHAPES, *NARROW, "--model-arg",
                 "context=null", "--max-trials", "1", "--max-epochs", "1", "--runs-dir", str(runs),
                 "--run-name", "default-space"])
    assert code == 0
    search = json.load(open(runs / "default-space" / "tune" / "search.json"))
    assert search["space"] == {key: list(values) for key, values in SPACES["segmentation_lr"].items()}
    assert search["task"] == "segmentation" and search["objective"] == "val_mean_iou"


def test_a_space_the_task_cannot_take_is_refused_naming_the_fix(runs):
    from keras_resnets.tuning import tune

    with pytest.raises(ValueError, match=r"segmentation data allows augment \['none'\] only.*--space-arg augment=none"):
        tune("dilated_resnet18_seg", "shapes", space="study", runs_dir=str(runs), run_name="refused")


def test_export_reads_the_task_from_the_run_config(front_end, tmp_path):
    """``keras-resnets export RUN`` with no extra flags: segmentation, verified by mIoU."""
    from keras_resnets.export import export_model

    result = export_model(front_end.path, output_dir=tmp_path / "export", quantize="none", calibration_samples=8,
                          benchmark_runs=5)
    assert result.report["task"] == "segmentation" and result.report["accuracy"]["metric"] == "miou"
    assert abs(result.report["accuracy"]["tflite_miou"] - result.report["accuracy"]["keras_miou"]) < 0.5


def test_evaluate_refuses_a_segmentation_run_in_one_line(front_end):
    from keras_resnets.training import evaluate

    with pytest.raises(ValueError, match="evaluate protocols are for classification runs; .* is a segmentation run"):
        evaluate.evaluate_run(front_end.path, ["centre_crop"])


def test_export_refuses_a_run_config_whose_task_does_not_match_the_model(front_end, tmp_path):
    import shutil

    from keras_resnets.export import export_model
    from keras_resnets.export.errors import ExportError

    run = shutil.copytree(front_end.path, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    config = RunConfig.load(run)
    config.replace(task="classification").save(run)
    with pytest.raises(ExportError, match="task is 'classification' but the model outputs"):
        export_model(run, quantize="none")


def test_resume_of_a_finished_segmentation_run_is_a_no_op(front_end, capsys):
    from keras_resnets.cli import main

    before = open(front_end.final_model, "rb").read()
    code = main(["train", "--model", "dilated_resnet18_seg", "--dataset", "shapes", *SHAPES, *NARROW, "--model-arg",
                 "context=null", "--epochs", "3", "--lr", "0.1", "--runs-dir", os.path.dirname(front_end.path),
                 "--run-name", "front", "--resume"])
    assert code == 0 and "nothing to do" in capsys.readouterr().out
    assert open(front_end.final_model, "rb").read() == before
    assert np.isfinite(json.load(open(front_end.metrics))["test_mean_iou"])


def test_cli_says_what_it_trains_what_it_loaded_and_how_it_ended(front_end, runs, capsys):
    from keras_resnets.cli import main

    code = main(["train", "--model", "dilated_resnet18_seg", "--dataset", "shapes", *SHAPES, *NARROW, "--epochs", "1",
                 "--lr", "0.1", "--runs-dir", str(runs), "--run-name", "staged-cli", "--init-from", front_end.path,
                 "--freeze", "backbone", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert ("recipe shapes_segmentation (the segmentation default): adam, lr 0.1 [set], schedule constant, "
            "weight decay 0.0001, batch 16, 1 epoch [set], augment none") in out
    loaded = re.search(r"init-from \S+: loaded (\d+) layers, skipped (\d+) \(.*\), froze (\d+)", out)
    assert loaded and int(loaded[1]) > 0 and int(loaded[2]) > 0 and loaded[3] == loaded[1], out
    assert "finished dilated_resnet18_seg on shapes: 1 epoch" in out and "test mean_iou" in out
    assert '"status"' not in out and "run directory: " in out  # a summary, not metrics.json
