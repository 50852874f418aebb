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

    assert list_experiments() == ["degradation", "degradation_long", "identity_mappings", "densenet"]
    assert get_experiment("01_degradation").name == "degradation"
    with pytest.raises(ValueError, match="unknown experiment 'degradaton'.*did you mean degradation"):
        get_experiment("degradaton")
    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    text = capsys.readouterr().out
    assert "degradation" in text and "identity_mappings" in text and "--scale paper" in text
    assert "edge_deployment" in text  # a measurement, listed apart from the experiments
