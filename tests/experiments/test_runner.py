"""run_experiment on the smoke scale: the results file, resuming, the figure, the CLI's listing."""
import json

import numpy as np
import pytest

from keras_resnets.experiments import get_experiment, list_experiments, run_experiment

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment")
    results = run_experiment("identity_mappings", scale="smoke", arms=["identity"], results_dir=str(out),
                             figures_dir=str(out), progress=None)
    return out, results


def test_results_file_holds_the_protocols_fields(smoke):
    out, results = smoke
    stored = json.loads((out / "02_identity_mappings-smoke.json").read_text())
    assert stored["chance"] == pytest.approx(0.1)
    assert {"backend", "cpu", "wall_seconds", "verdicts", "arms", "expectation"} <= set(stored)
    identity = next(a for a in stored["arms"] if a["name"] == "identity")
    assert identity["seeds"] == [0] and identity["steps"] == [6]
    run = identity["runs"][0]
    assert 0.0 <= run["test_accuracy"] <= 1.0 and 0.0 <= run["train_error"] <= 1.0
    assert np.isfinite(run["train_crossentropy"]) and run["curve"]["step"] == [2, 4, 6]
    # one seed, arms not run: every verdict is "not tested", never typed
    assert {v["verdict"] for v in stored["verdicts"]} == {"not tested"}
    assert (out / "02_identity_mappings-smoke.png").stat().st_size > 10_000


def test_a_second_call_continues_instead_of_retraining(smoke):
    out, results = smoke
    again = run_experiment("identity_mappings", scale="smoke", arms=["identity"], results_dir=str(out),
                           figures_dir=None, progress=None)
    assert again["arms"][0]["runs"] == results["arms"][0]["runs"]


def test_other_settings_refuse_to_mix_into_a_results_file(smoke):
    out, _ = smoke
    path = out / "02_identity_mappings-smoke.json"
    stored = json.loads(path.read_text())
    stored["protocol"]["budget"]["steps"] = 7
    path.write_text(json.dumps(stored))
    with pytest.raises(ValueError, match="written with other settings"):
        run_experiment("identity_mappings", scale="smoke", results_dir=str(out), figures_dir=None, progress=None)
    with pytest.raises(ValueError, match="unknown arm 'nope'.*allowed: identity"):
        run_experiment("identity_mappings", scale="smoke", arms=["nope"], results_dir=str(out), progress=None)


def test_crossentropy_metric_leaves_out_the_weight_decay_penalty():
    """Keras' loss includes the L2 penalty; the experiments compare the ``crossentropy`` metric."""
    import keras

    from keras_resnets.models import create_model
    from keras_resnets.training.loop import compile_model
    from keras_resnets.training.recipes import get_recipe, with_overrides

    model = create_model("cifar_resnet20", depth=8, input_shape=(8, 8, 3), classes=10)
    compile_model(model, with_overrides(get_recipe("he2016_cifar"), weight_decay=0.1), total_steps=1,
                  extra_metrics=[keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")])
    x, y = np.random.default_rng(0).normal(size=(8, 8, 8, 3)), np.arange(8) % 10
    scores = model.evaluate(x, y, verbose=0, return_dict=True)
    penalty = sum(0.05 * float(np.sum(np.square(w))) for w in model.trainable_weights if w.path.endswith("kernel"))
    assert scores["loss"] - scores["crossentropy"] == pytest.approx(penalty, rel=1e-3)


def test_names_scales_and_the_cli_listing(capsys):
    from keras_resnets.cli import main

    assert list_experiments() == ["degradation", "degradation_long", "degradation_32", "identity_mappings",
                                  "densenet", "dilated_context", "cifar10_study", "cifar10_study_long"]
    assert get_experiment("01_degradation").name == "degradation"
    with pytest.raises(ValueError, match="unknown experiment 'degradaton'.*did you mean degradation"):
        get_experiment("degradaton")
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = capsys.readouterr().out
    assert "degradation" in text and "identity_mappings" in text and "--scale paper" in text
    assert "cifar10_study" in text and "dilated_context" in text
    assert "edge_deployment" in text  # a measurement, listed apart from the experiments


def test_a_grid_cell_trains_with_its_own_augmentation_and_lr_ratio(tmp_path):
    """One cell of the CIFAR-10 study at the smoke scale: its factors and training settings are stored,
    and a grid's figure is the heat map."""
    label = "crop_flip_color_blur/tanh/2:1:1"
    results = run_experiment("cifar10_study", scale="smoke", arms=[label], results_dir=str(tmp_path),
                             figures_dir=str(tmp_path), progress=None)
    cell = next(a for a in results["arms"] if a["name"] == label)
    assert cell["factors"] == {"activation": "tanh", "augment": "crop_flip_color_blur", "lr_ratio": "2:1:1"}
    assert cell["kwargs"] == {"depth": 8, "activation": "tanh"} and cell["steps"] == [6]
    assert {"augment": "crop_flip_color_blur", "lr_ratio": "2:1:1"} == cell["train"]
    # 35 cells not run: every share verdict is "not tested"
    assert {v["verdict"] for v in results["verdicts"]} == {"not tested"}
    assert (tmp_path / "05_cifar10_study-smoke.png").stat().st_size > 10_000


def test_staged_protocol_continues_one_front_end_checkpoint(tmp_path):
    """The context module's protocol at the smoke scale (32 images, 2 + 2 steps): the three arms share
    the seed, the context arm records its mean IoU before its own training, chance is the majority
    class's mean IoU, and with one seed the verdict is "not tested"."""
    results = run_experiment("dilated_context", scale="smoke", results_dir=str(tmp_path), figures_dir=str(tmp_path),
                             progress=None)
    arms = {a["name"]: a for a in results["arms"]}
    assert list(arms) == ["front_end", "context", "front_end_longer"]
    assert all(arm["seeds"] == [0] and arm["steps"] == [2] for arm in arms.values())
    assert 0.0 < results["chance"] < 1.0 and results["chance_metric"] == "test_miou"
    assert 0.0 <= arms["context"]["runs"][0]["start_miou"] <= 1.0
    assert arms["context"]["params"][0] > arms["front_end"]["params"][0] == arms["front_end_longer"]["params"][0]
    assert results["verdicts"][0]["verdict"] == "not tested"
    assert (tmp_path / "04_dilated_context-smoke.png").stat().st_size > 10_000
