"""Shared settings of the tuning tests: a tiny model and the embedded digits at their native 8x8."""
import pytest

TINY_MODEL = "cifar_resnet20"
TINY_MODEL_KWARGS = {"depth": 8}
IMAGE_SIZE = (8, 8)
# 2 activations x 2 lr ratios without augmentation: four cells that train in seconds.
SMALL_SPACE = {"augment": ["none"], "activation": ["relu", "tanh"], "lr_ratio": ["2:1:1", "5:3:2"]}


@pytest.fixture(scope="session")
def digits():
    """The embedded digits at 8x8, loaded once for every test of the session."""
    from keras_resnets.data import load_dataset

    return load_dataset("digits", image_size=IMAGE_SIZE, seed=0)


def tiny_tune_args(**overrides) -> dict:
    """``tune`` keywords of a fast search over ``SMALL_SPACE`` (1 epoch per trial)."""
    args = dict(space=SMALL_SPACE, tuner="grid", max_epochs=1, model_kwargs=dict(TINY_MODEL_KWARGS),
                image_size=IMAGE_SIZE)
    args.update(overrides)
    return args
