"""The search space, the grid's enumeration of the study's 36 cells, and errors before any trial."""
import itertools
import os

import pytest

from keras_resnets.tuning.space import (
    STUDY_ACTIVATIONS,
    STUDY_AUGMENTATIONS,
    STUDY_LR_RATIOS,
    SearchSpace,
    parse_space_override,
)
from tests.tuning.conftest import TINY_MODEL_KWARGS, tiny_tune_args

pytestmark = pytest.mark.tf_only


def _enumerate_grid(tuner):
    """Drive the tuner's oracle as a search does, without training; return the cells it hands out."""
    from keras_tuner.engine import trial as trial_module

    cells = []
    while True:
        trial = tuner.oracle.create_trial("tuner0")
        if trial.status == trial_module.TrialStatus.STOPPED:
            return cells
        cells.append(tuple(trial.hyperparameters.values[k] for k in ("augment", "activation", "lr_ratio")))
        tuner.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = trial_module.TrialStatus.COMPLETED
        tuner.oracle.end_trial(trial)


def test_study_grid_hands_out_exactly_the_36_cells(tmp_path):
    from keras_resnets.training import get_recipe
    from keras_resnets.tuning.hypermodel import ResNetHyperModel
    from keras_resnets.tuning.tuners import build_tuner, make_objective

    space = SearchSpace.from_spec("study")
    assert space.grid_size == 36
    objective = make_objective("val_accuracy")
    hypermodel = ResNetHyperModel("cifar_resnet20", space, None, epochs=1, recipe=get_recipe("cifar10_study"),
                                  objective=objective)
    tuner = build_tuner("grid", hypermodel, objective=objective, directory=str(tmp_path), project_name="tune",
                        max_epochs=1)
    cells = _enumerate_grid(tuner)
    expected = set(itertools.product(STUDY_AUGMENTATIONS, STUDY_ACTIVATIONS, STUDY_LR_RATIOS))
    assert len(cells) == 36
    assert set(cells) == expected


def test_space_values_are_canonical_and_overrides_apply():
    space = SearchSpace.from_spec("study", {"activation": ["relu", "leaky relu"], "lr_ratio": ["5:3:2", "2:1:1.0"],
                                            "lr": [0.1], "depth": [8, 14]})
    assert space.values["activation"] == ("relu", "leaky_relu")
    assert space.values["lr_ratio"] == ("5:3:2", "2:1:1")
    assert space.grid_size == 3 * 2 * 2 * 1 * 2
    assert SearchSpace.from_spec("study", {"augment": []}).values.keys() == {"activation", "lr_ratio"}
    assert SearchSpace.from_spec("study_continuous").grid_size is None
    assert parse_space_override("lr=0.05,0.1") == ("lr", [0.05, 0.1])
    assert parse_space_override("batch-size=64,128") == ("batch_size", [64, 128])
    assert parse_space_override("lr_ratio=5:3:2,2:1:1") == ("lr_ratio", ["5:3:2", "2:1:1"])


@pytest.mark.parametrize("overrides, message", [
    (dict(tuner="annealing"), "unknown tuner 'annealing'; allowed: grid, random, bayesian, hyperband"),
    (dict(space="cifar"), "unknown search space 'cifar'; allowed: study"),
    (dict(space_overrides={"dropout": [0.1]}), "unknown search space key 'dropout'; allowed: augment"),
    (dict(space_overrides={"activation": ["relux"]}), "unknown activation 'relux'; allowed:"),
    (dict(space_overrides={"augment": ["cutout"]}), "'cutout' of 'augment' is not an augmentation policy; allowed:"),
    (dict(space_overrides={"lr_ratio": ["5:3"]}), "'5:3' of 'lr_ratio' is not a ratio"),
    (dict(space_overrides={"lr": [-0.1]}), "-0.1 of 'lr' must be a number > 0"),
    (dict(space={}), "the search space is empty"),
    (dict(space={"activation": []}), "the search space is empty"),
    (dict(objective="val_top5"), "objective 'val_top5' is not reported by classification models; allowed: val_accuracy"),
    (dict(direction="up"), "unknown objective direction 'up'; allowed: max, min"),
    (dict(space="study_continuous"), "the grid tuner needs a finite space"),
    (dict(space_overrides={"unit": ["basic", "pyramid"]}), "value 'pyramid' of 'unit' does not build"),
    (dict(max_epochs=0), "max_epochs must be a positive integer; got 0"),
])
def test_bad_input_fails_before_any_trial(tmp_path, digits, overrides, message):
    from keras_resnets.tuning import tune

    args = tiny_tune_args(space="study", datasets=digits, runs_dir=str(tmp_path), run_name="bad")
    args.update(overrides)
    with pytest.raises(ValueError) as error:
        tune(**args)
    assert message in str(error.value)
    tune_dir = tmp_path / "bad" / "tune"
    assert not tune_dir.exists() or not any(p.name.startswith("trial_") for p in tune_dir.iterdir())


def test_cli_prints_one_line_on_bad_input(tmp_path, capsys):
    from keras_resnets.cli import main

    code = main(["tune", "--runs-dir", str(tmp_path), "--space-arg", "activation=relu,swishy", "--image-size", "8",
                 "--model-arg", f"depth={TINY_MODEL_KWARGS['depth']}"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "unknown activation 'swishy'" in err and "Traceback" not in err
    assert not os.listdir(tmp_path)


def test_search_refuses_an_existing_directory_without_resume(tmp_path, digits):
    from keras_resnets.tuning import tune

    os.makedirs(tmp_path / "taken" / "tune")
    (tmp_path / "taken" / "tune" / "search.json").write_text("{}")
    with pytest.raises(ValueError, match="a search already exists in .*pass resume=True"):
        tune(**tiny_tune_args(datasets=digits, runs_dir=str(tmp_path), run_name="taken"))
    with pytest.raises(ValueError, match="cannot resume: .* does not exist"):
        tune(**tiny_tune_args(datasets=digits, runs_dir=str(tmp_path), run_name="missing", resume=True))
