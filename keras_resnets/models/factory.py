"""``create_model``: the one way to build a named model, ImageNet weights included.

Above the registry (``keras_resnets.models.registry``) and the keras.applications port
(``keras_resnets.models.port``), which both build through the registry; loads no Keras until a model is built.
"""
from __future__ import annotations

from keras_resnets.models.registry import build_registered, model_keywords


def create_model(name: str, **overrides):
    """Build the registered model ``name``.

    Args:
        name: a name from :func:`list_models`.
        **overrides: any keyword of the model's builder (see ``get_entry(name).keywords()``), e.g.
            ``classes``, ``input_shape``, ``activation``, ``shortcut``, ``placement``, ``weights``.
            ``weights="imagenet"`` goes through the keras.applications port where one exists.

    Raises:
        ValueError: unknown name or keyword, or an invalid value (named in the message).
    """
    _, weights = model_keywords(name, overrides)
    if weights == "imagenet":  # the port builds the model's own configuration: only the caller's keywords pass
        from keras_resnets.models.port import imagenet_model

        return imagenet_model(name, **{k: v for k, v in overrides.items() if k != "weights"})
    return build_registered(name, **overrides)
