"""Search spaces: which hyper-parameters a search varies and over which values.

The ``study`` space is the CIFAR-10 study's 3 x 4 x 3 grid (docs/tuning.md): the learning-rate
ratio (share of epochs at lr, lr/10, lr/100), the activation of the residual units and the
augmentation policy. A space is a mapping ``key -> values``; every key is one of ``SPACE_KEYS``:

- ``lr_ratio``: ``"a:b:c"`` strings, or the single value ``"continuous"`` to tune the three shares
  as numbers in ``CONTINUOUS_SHARE_RANGE`` (random, Bayesian and Hyperband tuners only).
- ``activation``: any Keras activation name (``relu``, ``leaky_relu``, ``tanh``, ``sigmoid``, ...).
- ``augment``: augmentation policies of ``keras_resnets.data``.
- ``lr``, ``weight_decay``, ``batch_size``: the training recipe's fields of the same name.
- ``depth``, ``unit``, ``shortcut``: keywords of the model's builder (``create_model``).

Spaces are validated when they are built (``SearchSpace.from_spec``), before any trial starts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

STUDY_LR_RATIOS = ("2:1:1", "5:3:2", "5:4:1")
STUDY_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu")
STUDY_AUGMENTATIONS = ("none", "crop_flip", "crop_flip_color_blur")
CONTINUOUS = "continuous"
CONTINUOUS_SHARE_RANGE = (1.0, 10.0)
SHARE_NAMES = ("lr_share_high", "lr_share_mid", "lr_share_low")

RECIPE_KEYS = ("lr_ratio", "augment", "lr", "weight_decay", "batch_size")
MODEL_KEYS = ("activation", "depth", "unit", "shortcut")
SPACE_KEYS = ("augment", "activation", "lr_ratio", "lr", "weight_decay", "batch_size", "depth", "unit", "shortcut")

SPACES = {
    "study": {"augment": STUDY_AUGMENTATIONS, "activation": STUDY_ACTIVATIONS, "lr_ratio": STUDY_LR_RATIOS},
    "study_continuous": {"augment": STUDY_AUGMENTATIONS, "activation": STUDY_ACTIVATIONS, "lr_ratio": (CONTINUOUS,)},
    "study_optimizer": {
        "augment": STUDY_AUGMENTATIONS, "activation": STUDY_ACTIVATIONS, "lr_ratio": STUDY_LR_RATIOS,
        "lr": (0.05, 0.1, 0.2), "weight_decay": (1e-4, 5e-4), "batch_size": (64, 128),
    },
    # the segmentation task's default: Adam's learning rate around the shapes_segmentation recipe's 1e-2
    "segmentation_lr": {"lr": (0.005, 0.01, 0.02)},
}


def _positive_number(key: str, value, integer: bool = False, allow_zero: bool = False):
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value >= 0 if allow_zero else value > 0)
    if not ok:
        wanted = "an integer" if integer else "a number"
        raise ValueError(f"space value {value!r} of {key!r} must be {wanted} {'>= 0' if allow_zero else '> 0'}")
    return int(value) if integer else float(value)


def _check_value(key: str, value):
    """Return ``value`` in canonical form, or raise ``ValueError`` naming it and what is allowed."""
    if key == "lr_ratio":
        if value == CONTINUOUS:
            return value
        from keras_resnets.training.schedules import parse_lr_ratio

        try:
            shares = parse_lr_ratio(value)
        except ValueError:
            raise ValueError(f"space value {value!r} of 'lr_ratio' is not a ratio 'a:b:c' of three positive "
                             f"numbers (e.g. {', '.join(STUDY_LR_RATIOS)}) nor {CONTINUOUS!r}") from None
        return ":".join(f"{s:g}" for s in shares)
    if key == "augment":
        from keras_resnets.data import POLICIES

        if value not in POLICIES:
            raise ValueError(f"space value {value!r} of 'augment' is not an augmentation policy; "
                             f"allowed: {', '.join(POLICIES)}")
        return value
    if key == "activation":
        from keras_resnets.layers.activations import resolve_activation

        return resolve_activation(value)
    if key == "lr":
        return _positive_number(key, value)
    if key == "weight_decay":
        return _positive_number(key, value, allow_zero=True)
    if key in ("batch_size", "depth"):
        return _positive_number(key, value, integer=True)
    if not isinstance(value, str) or not value:
        raise ValueError(f"space value {value!r} of {key!r} must be a non-empty string")
    return value


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space: ``key -> tuple of values``, in the order the grid enumerates them.

    Attributes:
        values: ordered mapping of each searched key to its candidate values.
    """

    values: dict

    @classmethod
    def from_spec(cls, spec, overrides: dict | None = None) -> "SearchSpace":
        """Build and validate a space.

        Args:
            spec: a name from ``SPACES`` or a mapping ``key -> values`` (a single value is read as a
                one-value list).
            overrides: ``key -> values`` replacing or adding keys of ``spec`` (an empty list removes
                the key).

        Raises:
            ValueError: unknown space name or key, a bad value, or an empty space.
        """
        if isinstance(spec, str):
            if spec not in SPACES:
                raise ValueError(f"unknown search space {spec!r}; allowed: {', '.join(SPACES)} or a mapping "
                                 f"of keys ({', '.join(SPACE_KEYS)}) to values")
            spec = SPACES[spec]
        if not isinstance(spec, dict):
            raise ValueError(f"a search space must be a name ({', '.join(SPACES)}) or a mapping; got {spec!r}")
        merged = dict(spec)
        merged.update(overrides or {})
        values = {}
        for key, candidates in merged.items():
            if key not in SPACE_KEYS:
                raise ValueError(f"unknown search space key {key!r}; allowed: {', '.join(SPACE_KEYS)}")
            if isinstance(candidates, (str, int, float)):
                candidates = (candidates,)
            checked = []
            for value in candidates:
                value = _check_value(key, value)
                if value not in checked:
                    checked.append(value)
            if key == "lr_ratio" and CONTINUOUS in checked and len(checked) > 1:
                raise ValueError(f"lr_ratio {CONTINUOUS!r} tunes the shares as numbers and cannot be mixed "
                                 f"with fixed ratios; got {list(candidates)}")
            if checked:
                values[key] = tuple(checked)
        if not values:
            raise ValueError(f"the search space is empty; give at least one key of {', '.join(SPACE_KEYS)} "
                             f"with one or more values")
        return cls(values)

    @property
    def continuous(self) -> bool:
        """Whether the lr ratio's shares are tuned as numbers (no finite grid)."""
        return self.values.get("lr_ratio") == (CONTINUOUS,)

    @property
    def grid_size(self) -> int | None:
        """Cells of the full grid (``None`` for a continuous space)."""
        return None if self.continuous else math.prod(len(v) for v in self.values.values())

    def validate_model(self, model: str) -> None:
        """Check that ``model`` accepts every model keyword of the space.

        Raises:
            ValueError: unknown model, or a key the model's builder does not take.
        """
        from keras_resnets.models import get_entry

        keywords = get_entry(model).keywords()
        for key in self.values:
            if key in MODEL_KEYS and key not in keywords:
                raise ValueError(f"search space key {key!r} is not a keyword of model {model!r}; "
                                 f"its keywords: {', '.join(keywords)}")

    def declare(self, hp) -> dict:
        """Register the space on KerasTuner ``HyperParameters`` and return this trial's values.

        Every key is a ``Choice`` (in the space's order, so the grid is the product of the lists);
        a continuous lr ratio is three ``Float`` shares joined as ``"a:b:c"``.

        Args:
            hp: ``keras_tuner.HyperParameters``.

        Returns:
            ``key -> value`` for every key of the space.
        """
        chosen = {}
        for key, candidates in self.values.items():
            if key == "lr_ratio" and self.continuous:
                low, high = CONTINUOUS_SHARE_RANGE
                shares = [hp.Float(name, low, high) for name in SHARE_NAMES]
                chosen[key] = ":".join(f"{s:.3g}" for s in shares)
            else:
                chosen[key] = hp.Choice(key, list(candidates), ordered=False)
        return chosen

    def to_dict(self) -> dict:
        """JSON-ready ``key -> list of values``."""
        return {key: list(v) for key, v in self.values.items()}


def parse_space_override(text: str):
    """``KEY=V1,V2,...`` -> ``(key, [values])``; numbers are read as numbers.

    Args:
        text: e.g. ``"activation=relu,tanh"``, ``"lr=0.05,0.1"``, ``"lr_ratio=continuous"``.

    Raises:
        ValueError: no ``=`` or no key.
    """
    key, sep, values = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise ValueError(f"a space override must be KEY=V1,V2,...; got {text!r}")
    parsed = []
    for item in filter(None, (v.strip() for v in values.split(","))):
        try:
            number = float(item)
        except ValueError:
            parsed.append(item)
            continue
        parsed.append(int(number) if number.is_integer() and "." not in item and "e" not in item.lower() else number)
    return key, parsed
