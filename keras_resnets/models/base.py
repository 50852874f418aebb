"""What every builder shares: keras.applications-style inputs, heads, feature taps and weights."""
from __future__ import annotations

import os
import sys
import warnings

import keras
from keras import layers

POOLINGS = (None, "avg", "max")


def model_input(input_tensor=None, input_shape=None, default_shape=(224, 224, 3), min_size: int = 1):
    """The model's input, validated.

    Args:
        input_tensor: an existing Keras tensor to build on (``keras.Input`` or a layer output).
        input_shape: (height, width, channels); ``None`` entries allow any size.
        default_shape: used when neither of the above is given.
        min_size: the smallest height/width the network's downsampling can process.

    Returns:
        (inputs, x): the model's input tensor(s) and the tensor the body starts from.
    """
    if input_tensor is not None:
        if not _is_keras_tensor(input_tensor):
            raise ValueError(f"input_tensor must be a Keras tensor (keras.Input or a layer's output), "
                             f"got {type(input_tensor).__name__}")
        shape = tuple(input_tensor.shape[1:])
        # As keras.applications does: the model starts at the Input(s) the tensor was computed from,
        # so the layers that produced ``input_tensor`` become part of the model.
        inputs = keras.utils.get_source_inputs(input_tensor)
        inputs = inputs[0] if len(inputs) == 1 else inputs
    else:
        shape = tuple(default_shape if input_shape is None else input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
        inputs = keras.Input(shape=shape, name="images")
    for size, what in zip(shape[:2], ("height", "width")):
        if size is not None and size < min_size:
            raise ValueError(
                f"input {what} {size} is too small for this network's downsampling; "
                f"height and width must be at least {min_size} (input_shape={shape})"
            )
    if shape[-1] is None:
        raise ValueError(f"the number of input channels must be known, got input_shape={shape}")
    return inputs, (input_tensor if input_tensor is not None else inputs)


def _is_keras_tensor(tensor) -> bool:
    return getattr(tensor, "_keras_history", None) is not None


def classification_head(x, *, include_top: bool, pooling, classes: int, classifier_activation):
    """Global pooling and the classifier, as keras.applications does it.

    With ``include_top`` the output is GAP followed by ``Dense(classes)`` named ``predictions``;
    without it ``pooling`` picks ``None`` (the last feature map), ``"avg"`` or ``"max"``.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {pooling!r}; allowed: None, 'avg', 'max'")
    if include_top:
        if not isinstance(classes, int) or classes < 1:
            raise ValueError(f"classes must be a positive integer, got {classes!r}")
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def allow_deep_graphs(layer_count_hint: int) -> None:
    """Raise Python's recursion limit for very deep graphs (ResNet-1202, ResNet-1001).

    Keras walks functional graphs recursively when it builds, saves and loads them; ~4,000 layers
    in a chain exceed Python's default limit of 1,000. The limit is only ever raised.
    """
    needed = 4 * layer_count_hint + 1000
    if sys.getrecursionlimit() < needed:
        sys.setrecursionlimit(needed)


def load_weights(model: keras.Model, weights) -> keras.Model:
    """Load ``weights`` into ``model``: ``None`` (random init), a ``.weights.h5`` file or a ``.keras`` file.

    ``"imagenet"`` is handled by :func:`keras_resnets.create_model` through the keras.applications port.

    Raises:
        ValueError: missing file, unsupported extension, or weights of another architecture.
    """
    if weights is None:
        return model
    if weights == "imagenet":
        raise ValueError(
            f"weights='imagenet' is available through keras_resnets.create_model for models with a "
            f"keras.applications port (see keras_resnets.models.port.IMAGENET_PORTS), not for {model.name!r}"
        )
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise ValueError(f"weights must be None, 'imagenet' or an existing file; no file at {path!r}")
    if not path.endswith((".weights.h5", ".keras", ".h5")):
        raise ValueError(f"weights file {path!r} must end in .weights.h5 or .keras")
    try:
        if path.endswith(".keras"):
            source = keras.saving.load_model(path, compile=False)
            _copy_weights(source, model)
        else:
            _load_weights_file(model, path)
    except ValueError as err:
        detail = _first_line(err).rstrip(":")
        count = None if path.endswith(".keras") else _h5_tensor_count(path)
        if count is not None:
            detail = f"the file holds {count} weight tensors, {model.name!r} has {len(model.weights)}; {detail}"
        raise ValueError(f"weights file {path!r} does not fit model {model.name!r}: {detail}") from None
    except Exception as err:  # h5py/KeyError from a foreign file
        raise ValueError(f"weights file {path!r} could not be loaded into {model.name!r}: {_first_line(err)}") from None
    return model


def _load_weights_file(model: keras.Model, path: str) -> None:
    """``model.load_weights(path)``, refusing a file that leaves some layers at their initial weights.

    Keras warns ("Skipping nested container ... retain their freshly-initialized weights") for each
    part of the model the file has no group for, then either fails or returns with those layers
    untouched. Either way the warnings are not the user's answer: a partial load is refused here in
    one line, and the other warnings pass on.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    skipped = [w for w in caught if "freshly-initialized weights" in str(w.message)]
    for w in caught:
        if w not in skipped:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if skipped:
        raise ValueError(f"{len(skipped)} parts of the model found no weights in the file")


def _copy_weights(source: keras.Model, target: keras.Model) -> None:
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        raise ValueError(f"architecture differs: source {source.name!r} has {len(src)} weight tensors, "
                         f"target {target.name!r} has {len(dst)}")
    for a, b in zip(src, dst):
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"architecture differs: source {source.name!r} has {a.path} of shape {tuple(a.shape)}, "
                             f"target {target.name!r} has {b.path} of shape {tuple(b.shape)}")
    for a, b in zip(src, dst):
        b.assign(a)


def _h5_tensor_count(path: str):
    try:
        import h5py  # a Keras dependency

        with h5py.File(path, "r") as f:
            count = []
            f.visititems(lambda name, obj: count.append(1) if isinstance(obj, h5py.Dataset) else None)
            return len(count)
    except Exception:  # not an HDF5 file: the loader's own error says so
        return None


def _first_line(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__
