"""`keras-resnets train --recipe he2016_imagenet` on a generated JPEG folder (streaming), then
`keras-resnets evaluate RUN --protocol centre_crop|ten_crop|multi_scale` (issue 13)."""
import json
import os

import numpy as np
import pytest

from keras_resnets.runs import RunConfig
from tests.data.test_streaming import write_jpeg_folder

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def imagenet_style_run(tmp_path_factory):
    """A tiny ResNet trained for two epochs with the ImageNet recipe on 2 x 30 photos."""
    from keras_resnets.cli import main

    root = tmp_path_factory.mktemp("eval")
    folder = write_jpeg_folder(root / "photos", per_class=30, size=(44, 60))
    code = main(["train", "--model", "cifar_resnet20", "--model-arg", "depth=8", "--dataset", "folder",
                 "--data-dir", folder, "--recipe", "he2016_imagenet", "--image-size", "32", "--epochs", "2",
                 "--batch-size", "16", "--lr", "0.05", "--validation-split", "0.2", "--runs-dir", str(root / "runs"),
                 "--run-name", "imagenet_recipe", "--quiet"])
    assert code == 0
    return str(root / "runs" / "imagenet_recipe"), folder


def test_imagenet_recipe_trains_through_the_streaming_pipeline(imagenet_style_run):
    run_dir, _ = imagenet_style_run
    config = RunConfig.load(run_dir).to_dict()
    assert config["augment"] == "imagenet_scale" and config["batch_size"] == 16
    assert config["weight_decay"] == 1e-4 and config["momentum"] == 0.9 and config["lr_ratio"] == "1:1:1"
    assert config["input_shape"] == [32, 32, 3] and config["steps_per_epoch"] == 3  # 48 images / 16


def test_evaluate_runs_the_three_protocols(imagenet_style_run, capsys):
    from keras_resnets.cli import main

    run_dir, _ = imagenet_style_run
    code = main(["evaluate", run_dir, "--protocol", "centre_crop", "--protocol", "ten_crop",
                 "--protocol", "multi_scale", "--validation-split", "0.2", "--batch-size", "20"])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"centre_crop", "ten_crop", "multi_scale"}
    for protocol, result in printed.items():
        assert result["images"] == 12 and 0.0 <= result["top1"] <= 1.0
        assert json.load(open(os.path.join(run_dir, f"eval-{protocol}.json"))) == result
    # the two well-separated grey levels are learnt: every protocol does better than chance
    assert max(result["top1"] for result in printed.values()) > 0.5
    assert printed["multi_scale"]["scales"] == [32, 37, 55, 69, 91]  # {224..640} * 32 / 224


def test_protocol_scores_match_a_direct_computation(imagenet_style_run):
    """centre_crop equals the model on the pipeline's own centre crops; ten_crop averages 10 views."""
    import keras
    import tensorflow as tf

    from keras_resnets.data import imagenet
    from keras_resnets.training import evaluate

    run_dir, _ = imagenet_style_run
    config = evaluate.read_config(run_dir)
    source = evaluate.evaluation_split(config, "test", None, 0.2, 4)
    model = keras.saving.load_model(os.path.join(run_dir, "best.keras"))
    labels, scores = evaluate.centre_crop(model, source, config, batch_size=2)
    direct = []
    for file in source.files:
        image = imagenet.eval_image(tf.io.read_file(file), 32)
        direct.append(evaluate._probabilities(model, evaluate._normalise(image[None], config), config)[0])
    np.testing.assert_allclose(scores, np.stack(direct), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(labels, source.labels)
    _, ten = evaluate.ten_crop(model, source, config, batch_size=20)
    assert ten.shape == scores.shape and np.allclose(ten.sum(axis=1), 1.0, atol=1e-5)


def test_evaluate_all_images_of_another_folder_and_bad_input(imagenet_style_run, tmp_path, capsys):
    from keras_resnets.cli import main
    from keras_resnets.training import evaluate

    run_dir, _ = imagenet_style_run
    other = write_jpeg_folder(tmp_path / "val", per_class=3, size=(40, 40), seed=5)
    result = evaluate.evaluate_run(run_dir, ["centre_crop"], split="all", data_dir=other)
    assert result["centre_crop"]["images"] == 6
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    assert "does not exist (not a run directory)" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"unknown protocol 'five_crop'; allowed: centre_crop, ten_crop"):
        evaluate.evaluate_run(run_dir, ["five_crop"])
    with pytest.raises(ValueError, match=r"--scales must be positive integers"):
        evaluate._parse_scales("224,x")


def test_evaluate_a_tfds_run_offline_under_tfds_mock_data(tmp_path):
    """The TFDS path of evaluate (test split, --limit) through TFDS's mock harness."""
    import tensorflow_datasets as tfds

    from keras_resnets.models import create_model
    from keras_resnets.training import evaluate

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    RunConfig(model="cifar_resnet20", model_kwargs={"depth": 8}, dataset="cifar10", data_dir="/nonexistent/tfds",
              input_shape=[32, 32, 3], classes=10, class_names=[str(i) for i in range(10)],
              normalization={"mean": [127.0] * 3, "std": [64.0] * 3}, classifier_activation=None,
              seed=0).save(run_dir)
    create_model("cifar_resnet20", depth=8, input_shape=(32, 32, 3), classes=10,
                 classifier_activation=None).save(run_dir / "final.keras")
    with tfds.testing.mock_data(num_examples=40):
        results = evaluate.evaluate_run(str(run_dir), ["centre_crop", "multi_scale"], limit=6, scales=[32, 40])
    for result in results.values():
        assert result["images"] == 6 and result["model"] == "final.keras" and 0 <= result["top1"] <= 1
    assert results["multi_scale"]["scales"] == [32, 40]
