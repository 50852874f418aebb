"""The model registry: every named model is a configuration of a generic builder.

    >>> import keras_resnets
    >>> keras_resnets.list_models("cifar_resnet*")[:3]
    ['cifar_resnet20', 'cifar_resnet32', 'cifar_resnet44']
    >>> model = keras_resnets.create_model("preact_resnet164", shortcut="exclusive_gating", classes=10)
"""
from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import re
import importlib
from typing import Callable, Union

from keras_resnets.models.catalog import CATALOG

# Keras is imported only when a model is built: names, families and descriptions (``keras-resnets list``)
# come from the catalog (keras_resnets/models/catalog.py), whose builders are "module:function" references.


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """A registered model: the builder and the keywords that configure it."""

    name: str
    builder_ref: Union[Callable, str]  # the builder, or "module:function" imported on first use
    defaults: dict
    family: str
    description: str

    @property
    def builder(self) -> Callable:
        """The builder function (imports its module, and so Keras, on first use)."""
        if callable(self.builder_ref):
            return self.builder_ref
        from keras_resnets.environment import start_quietly

        start_quietly(uses_tensorflow=False)
        module, _, attr = self.builder_ref.partition(":")
        return getattr(importlib.import_module(module), attr)

    def keywords(self) -> list[str]:
        """Every keyword ``create_model`` accepts for this model."""
        return sorted(builder_keywords(self.builder) - {"name"})

    def check_defaults(self) -> None:
        """``ValueError`` if a default is not a keyword of the builder."""
        unknown = sorted(set(self.defaults) - builder_keywords(self.builder))
        if unknown:
            raise ValueError(f"{self.builder.__name__} does not take {unknown} (registering {self.name!r})")


def builder_keywords(builder) -> set[str]:
    """Keywords a builder accepts, following ``**kwargs`` into the builder it forwards them to.

    A builder that passes ``**kwargs`` on declares it with ``builder.forwards_to = other_builder`` and
    may list the keywords it sets itself in ``builder.fixed_keywords``.
    """
    params = inspect.signature(builder).parameters
    names = {n for n, p in params.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
    if any(p.kind == p.VAR_KEYWORD for p in params.values()) and hasattr(builder, "forwards_to"):
        names |= builder_keywords(builder.forwards_to) - set(getattr(builder, "fixed_keywords", ()))
    return names


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, builder: Union[Callable, str], *, family: str, description: str, **defaults):
    """Register ``name`` as ``builder(**defaults)``; keywords given to ``create_model`` override defaults.

    ``builder`` is a function, or a ``"module:function"`` reference imported when the model is first built
    (its defaults are checked then; a function's are checked now).
    """
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    entry = ModelEntry(name, builder, dict(defaults), family, description)
    if callable(builder):
        entry.check_defaults()
    _REGISTRY[name] = entry


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ``ValueError`` with close matches if it is unknown."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}{hint} (see keras_resnets.list_models(); {len(_REGISTRY)} registered)")
    return _REGISTRY[name]


def _natural_key(name: str):
    """Sort resnet18 before resnet101: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered model names matching a shell-style ``pattern`` (and ``family``), in natural order."""
    return sorted(
        (n for n, e in _REGISTRY.items() if fnmatch.fnmatch(n, pattern) and (family is None or e.family == family)),
        key=_natural_key,
    )


def model_keywords(name: str, overrides: dict) -> tuple:
    """``(keywords, weights)``: the builder keywords of ``name`` with ``overrides`` applied, and the
    ``weights`` asked for (``None`` when the builder takes none).

    Raises:
        ValueError: unknown name or keyword (naming the allowed ones).
    """
    entry = get_entry(name)
    entry.check_defaults()
    allowed = entry.keywords()
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise ValueError(f"unknown keyword {unknown[0]!r} for model {name!r}; allowed: {', '.join(allowed)}")
    kwargs = {**entry.defaults, **overrides}
    return kwargs, kwargs.pop("weights", None) if "weights" in allowed else None


def build_registered(name: str, **overrides):
    """Build the registered model ``name`` from its builder: ``create_model`` without the
    ``weights="imagenet"`` port (``keras_resnets.models.port``), which builds through this.

    Raises:
        ValueError: unknown name or keyword, or an invalid value (named in the message).
    """
    kwargs, weights = model_keywords(name, overrides)
    entry = get_entry(name)
    if "name" in builder_keywords(entry.builder):
        kwargs.setdefault("name", name)
    model = entry.builder(**kwargs)
    if weights is not None:
        from keras_resnets.models.base import load_weights

        load_weights(model, weights)
    return model


for _name, _builder, _keywords in CATALOG:  # the named models (keras_resnets/models/catalog.py)
    register_model(_name, _builder, **_keywords)
