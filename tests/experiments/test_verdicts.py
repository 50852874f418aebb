"""The verdict rules: reproduced / partly / not reproduced / not tested, the chance guard, divergence."""
import pytest

from keras_resnets.experiments.verdicts import (
    NOT_REPRODUCED,
    NOT_TESTED,
    NOT_TESTED_AT_CHANCE,
    PARTLY,
    REPRODUCED,
    Rule,
    judge,
    summarise,
)

pytestmark = pytest.mark.backend_independent
RULE = Rule("a beats b", "a", "b", metric="test_error")


def _arm(accuracies, **extra):
    return {"runs": [{"seed": s, "test_accuracy": acc, **extra} for s, acc in enumerate(accuracies)]}


@pytest.mark.parametrize("a, b, expected", [
    ([0.80, 0.82, 0.81], [0.70, 0.71, 0.69], REPRODUCED),     # +11 points in every seed
    ([0.80, 0.72, 0.81], [0.70, 0.79, 0.69], PARTLY),         # mean +5 but one seed the other way
    ([0.70, 0.71, 0.69], [0.80, 0.82, 0.81], NOT_REPRODUCED),  # the opposite
    ([0.70, 0.70, 0.70], [0.70, 0.70, 0.70], NOT_REPRODUCED),  # no difference
])
def test_paired_rule(a, b, expected):
    verdict = judge(RULE, {"a": _arm(a), "b": _arm(b)}, chance=0.1)
    assert verdict["verdict"] == expected
    assert verdict["numbers"]["seeds"] == [0, 1, 2]


def test_numbers_are_paired_differences_in_the_claimed_direction():
    verdict = judge(RULE, {"a": _arm([0.8, 0.9, 0.7]), "b": _arm([0.6, 0.8, 0.7])}, chance=0.1)
    assert verdict["numbers"]["advantage_per_seed"] == pytest.approx([0.2, 0.1, 0.0])
    assert verdict["numbers"]["mean_advantage"] == pytest.approx(0.1)
    assert verdict["verdict"] == PARTLY  # not in every seed


def test_chance_guard_any_compared_arm_below_chance_plus_20_points():
    """b is 10 points better than a in every seed, but a's mean (0.29) is below 0.1 + 0.2."""
    verdict = judge(RULE, {"a": _arm([0.29, 0.28, 0.30]), "b": _arm([0.39, 0.38, 0.40])}, chance=0.1)
    assert verdict["verdict"] == NOT_TESTED_AT_CHANCE
    assert "a 0.290" in verdict["reason"]
    at_threshold = judge(RULE, {"a": _arm([0.31] * 3), "b": _arm([0.30] * 3)}, chance=0.1)
    assert at_threshold["verdict"] == REPRODUCED


def test_fewer_than_three_seeds_missing_arms_and_divergence_are_not_tested():
    assert judge(RULE, {"a": _arm([0.8, 0.8]), "b": _arm([0.5, 0.5])}, 0.1)["verdict"] == NOT_TESTED
    assert "not run: b" in judge(RULE, {"a": _arm([0.8] * 3)}, 0.1)["reason"]
    diverged = {"a": _arm([0.8] * 3), "b": {"runs": [{"seed": s, "test_accuracy": None, "diverged": True}
                                                    for s in range(3)]}}
    verdict = judge(RULE, diverged, 0.1)
    assert verdict["verdict"] == NOT_TESTED and "diverged: b" in verdict["reason"]


def test_training_error_rule_is_lower_is_better():
    rule = Rule("deep trains worse", "shallow", "deep", metric="train_error")
    arms = {"shallow": {"runs": [{"seed": s, "test_accuracy": 0.7, "train_error": 0.10} for s in range(3)]},
            "deep": {"runs": [{"seed": s, "test_accuracy": 0.7, "train_error": 0.10 + 0.02 * (s + 1)}
                              for s in range(3)]}}
    assert judge(rule, arms, 0.1)["verdict"] == REPRODUCED
    with pytest.raises(ValueError, match="unknown metric 'loss'"):
        Rule("x", "a", "b", metric="loss")


def test_summary():
    def v(verdict):
        return {"verdict": verdict}

    assert summarise([v(REPRODUCED), v(REPRODUCED)]) == REPRODUCED
    assert summarise([v(REPRODUCED), v(NOT_REPRODUCED)]) == PARTLY
    assert summarise([v(NOT_REPRODUCED), v(NOT_TESTED)]) == NOT_REPRODUCED
    assert summarise([v(NOT_TESTED_AT_CHANCE), v(NOT_TESTED)]) == NOT_TESTED_AT_CHANCE
    assert summarise([v(REPRODUCED), v(NOT_TESTED)]) == PARTLY


# --- grid experiments: each factor's share of the variance between the cells ---------------------------
def _cells(value, seeds=lambda levels: 1):
    from keras_resnets.experiments.spec import CIFAR10_STUDY

    arms = {}
    for arm in CIFAR10_STUDY.arms_at("laptop"):
        n = seeds(arm.factors)
        arms[arm.label] = {"factors": arm.factors,
                           "runs": [{"seed": s, "test_accuracy": value(arm.factors) + 0.004 * s} for s in range(n)]}
    return arms


def test_factor_shares_give_the_study_its_published_shares():
    """The study's own 36 cells: activation 93.2 %, augmentation 5.6 %, lr ratio 0.1 % of the variance."""
    from keras_resnets.experiments.spec import STUDY_SHARES

    assert STUDY_SHARES == pytest.approx({"activation": 0.932, "augment": 0.0557, "lr_ratio": 0.0013}, abs=1e-4)


def test_share_rules_and_the_chance_guard_on_every_cell():
    from keras_resnets.experiments.spec import CIFAR10_STUDY
    from keras_resnets.experiments.verdicts import apply_rule

    activation = {"sigmoid": 0.5, "tanh": 0.7, "relu": 0.9, "leaky_relu": 0.9}
    augment = {"none": 0.0, "crop_flip": 0.02, "crop_flip_color_blur": -0.02}
    ratio = {"2:1:1": 0.0, "5:3:2": 0.001, "5:4:1": 0.002}
    dominant, minor, negligible = CIFAR10_STUDY.rules
    arms = _cells(lambda f: activation[f["activation"]] + augment[f["augment"]] + ratio[f["lr_ratio"]],
                  seeds=lambda f: 2 if f["augment"] == "none" and f["lr_ratio"] == "5:3:2" else 1)
    verdicts = [apply_rule(rule, arms, 0.1) for rule in CIFAR10_STUDY.rules]
    assert [v["verdict"] for v in verdicts] == [REPRODUCED] * 3
    numbers = verdicts[0]["numbers"]
    assert numbers["shares"]["activation"] > 0.9 and numbers["noise_std"] == pytest.approx(0.004 / 2 ** 0.5)
    # shares 44 / 39 / 17 %: the activation is the largest but not the majority, the augmentation above
    # 25 % but not the largest, the lr ratio the smallest but above 5 %: each rule is only partly met
    weaker = {"sigmoid": 0.6, "tanh": 0.7, "relu": 0.9, "leaky_relu": 0.9}
    close = _cells(lambda f: weaker[f["activation"]] + 7.5 * augment[f["augment"]] + 100 * ratio[f["lr_ratio"]])
    assert [apply_rule(rule, close, 0.1)["verdict"] for rule in CIFAR10_STUDY.rules] == [PARTLY] * 3
    # the augmentation dominating: both the activation's and the augmentation's claims fail
    flipped = _cells(lambda f: 0.8 + 0.1 * weaker[f["activation"]] + 10 * augment[f["augment"]])
    assert [apply_rule(rule, flipped, 0.1)["verdict"] for rule in (dominant, minor)] == [NOT_REPRODUCED] * 2
    # one cell below chance + 20 points: nothing is tested
    arms["crop_flip_color_blur/sigmoid/2:1:1"]["runs"][0]["test_accuracy"] = 0.25
    verdict = apply_rule(negligible, arms, 0.1)
    assert verdict["verdict"] == NOT_TESTED_AT_CHANCE and "crop_flip_color_blur/sigmoid/2:1:1 0.250" in verdict["reason"]


def test_the_study_grid_is_the_tuners_study_space():
    from keras_resnets.experiments import spec
    from keras_resnets.tuning import space

    assert spec.STUDY_AUGMENTATIONS == space.STUDY_AUGMENTATIONS
    assert spec.STUDY_ACTIVATIONS == space.STUDY_ACTIVATIONS and spec.STUDY_LR_RATIOS == space.STUDY_LR_RATIOS
    assert len(spec.CIFAR10_STUDY.arms_at("laptop")) == 36
