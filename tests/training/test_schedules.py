"""Learning-rate schedules: values on both sides of every boundary, and ratio parsing."""
import pytest

pytestmark = pytest.mark.tf_only


def _values(schedule, steps):
    return [round(float(schedule(step)), 8) for step in steps]


@pytest.mark.parametrize(
    "ratio, boundaries",
    [("2:1:1", (50, 75)), ("5:3:2", (50, 80)), ("5:4:1", (50, 90))],
)
def test_lr_ratio_schedule_switches_exactly_at_its_boundaries(ratio, boundaries):
    from keras_resnets.training.schedules import lr_ratio_schedule

    first, second = boundaries
    schedule = lr_ratio_schedule(0.1, total_steps=100, ratio=ratio)
    assert _values(schedule, [0, first - 1, first, second - 1, second, 99]) == [0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_paper_milestones_at_32k_and_48k_with_warmup():
    from keras_resnets.training.schedules import milestone_schedule

    schedule = milestone_schedule(0.1, milestones=(32000, 48000), warmup_steps=400)
    steps = [0, 399, 400, 31999, 32000, 47999, 48000, 63999]
    assert _values(schedule, steps) == [0.01, 0.01, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001]


def test_milestones_scale_to_the_run_length():
    from keras_resnets.training.schedules import build_schedule, scaled_milestones

    assert scaled_milestones(64000) == [32000, 48000]
    assert scaled_milestones(1000) == [500, 750]
    schedule = build_schedule("milestones", 0.1, 1000)
    assert _values(schedule, [499, 500, 749, 750]) == [0.1, 0.01, 0.01, 0.001]


def test_cosine_schedule_ends_at_zero_and_warms_up_linearly():
    from keras_resnets.training.schedules import cosine_schedule

    assert _values(cosine_schedule(0.1, 100), [0, 50, 100]) == [0.1, 0.05, 0.0]
    warm = cosine_schedule(0.1, 110, warmup_steps=10)
    assert _values(warm, [0, 5, 10, 110]) == [0.01, 0.055, 0.1, 0.0]


def test_constant_schedule():
    from keras_resnets.training.schedules import build_schedule

    assert _values(build_schedule("constant", 0.05, 10), [0, 9, 10**6]) == [0.05, 0.05, 0.05]


@pytest.mark.parametrize("bad", ["5:3", "a:b:c", "5:3:2:1", "5:0:2", "-1:1:1", "", "5:3:nan"])
def test_malformed_ratios_are_rejected_with_the_value(bad):
    from keras_resnets.training.schedules import parse_lr_ratio

    with pytest.raises(ValueError, match="malformed lr ratio") as err:
        parse_lr_ratio(bad)
    assert repr(bad) in str(err.value) and "5:3:2" in str(err.value)


def test_unknown_schedule_names_the_allowed_ones():
    from keras_resnets.training.schedules import build_schedule

    with pytest.raises(ValueError, match=r"'step'.*lr_ratio, milestones, cosine, constant"):
        build_schedule("step", 0.1, 100)
