"""Learning-rate schedules of the papers and the CIFAR-10 study, as Keras ``LearningRateSchedule``s.

All schedules are Keras built-ins (backend-agnostic; saved models load without custom classes)
and count optimizer iterations.

- ``lr_ratio_schedule``: the study's "a:b:c" ratio — share of training at lr, lr/10, lr/100.
- ``milestone_schedule``: divide by 10 at fixed iterations (He et al.: 32k and 48k of 64k, which is
  the ratio 2:1:1).
- ``cosine_schedule``: cosine decay to zero, a modern option.
- Step schedules take ``warmup_steps``: the first iterations run at ``warmup_lr`` (lr/10 by
  default), as the papers do for ResNet-110 and ResNet-1001 (lr 0.01 for about 400 iterations);
  the cosine schedule warms up linearly from lr/10.
"""
from __future__ import annotations

import math

import keras

SCHEDULES = ("lr_ratio", "milestones", "cosine", "constant")
PAPER_MILESTONES = (32000, 48000)
PAPER_ITERATIONS = 64000


def parse_lr_ratio(ratio) -> tuple:
    """Parse an lr ratio such as ``"5:3:2"`` into three positive numbers.

    Args:
        ratio: ``"a:b:c"`` string (or a 3-sequence): shares of training at lr, lr/10, lr/100.

    Raises:
        ValueError: not three positive numbers separated by ':'.
    """
    parts = ratio.split(":") if isinstance(ratio, str) else list(ratio)
    try:
        shares = tuple(float(p) for p in parts)
    except (TypeError, ValueError):
        shares = ()
    if len(shares) != 3 or not all(math.isfinite(s) and s > 0 for s in shares):
        raise ValueError(
            f"malformed lr ratio {ratio!r}; expected three positive numbers 'a:b:c' (shares of "
            f"training at lr, lr/10, lr/100), e.g. '2:1:1', '5:3:2', '5:4:1'"
        )
    return shares


NEVER = 2**31 - 1  # an iteration no run reaches (2**62 overflowed JAX's int32 iteration counter)


def piecewise_schedule(boundaries, values, warmup_steps: int = 0, warmup_lr: float = 0.0):
    """Constant pieces: ``values[i]`` for ``boundaries[i-1] <= step < boundaries[i]``, after a warm-up.

    Built on Keras' ``PiecewiseConstantDecay`` (which switches *after* a boundary, hence the -1),
    so saved models need no custom class to load.

    Args:
        boundaries: increasing iteration numbers where the rate changes (``len(values) - 1``).
        values: rates of the pieces.
        warmup_steps: iterations run at ``warmup_lr`` before the first piece takes over.
        warmup_lr: rate during warm-up.
    """
    if len(values) != len(boundaries) + 1:
        raise ValueError(f"need len(values) == len(boundaries) + 1; got {values} and {boundaries}")
    boundaries, values = [int(b) for b in boundaries], [float(v) for v in values]
    if warmup_steps:
        boundaries, values = [int(warmup_steps)] + boundaries, [float(warmup_lr)] + values
    if not boundaries:  # one piece: a boundary no run reaches, within int32 (JAX's default integers)
        return keras.optimizers.schedules.PiecewiseConstantDecay([NEVER], values * 2)
    return keras.optimizers.schedules.PiecewiseConstantDecay([b - 1 for b in boundaries], values)


def _warmup_lr(lr: float, warmup_lr) -> float:
    return lr / 10.0 if warmup_lr is None else float(warmup_lr)


def lr_ratio_schedule(lr: float, total_steps: int, ratio="5:3:2", warmup_steps: int = 0,
                      warmup_lr: float | None = None) -> keras.optimizers.schedules.LearningRateSchedule:
    """The study's schedule: shares ``a:b:c`` of ``total_steps`` at lr, lr/10 and lr/100.

    With ``total_steps=100`` and ``"5:3:2"``: steps 0-49 at lr, 50-79 at lr/10, 80-99 at lr/100.

    Args:
        lr: initial rate.
        total_steps: iterations of the whole run.
        ratio: ``"a:b:c"`` (see ``parse_lr_ratio``).
        warmup_steps: first iterations at ``warmup_lr``.
        warmup_lr: warm-up rate (default lr/10).
    """
    a, b, c = parse_lr_ratio(ratio)
    total = a + b + c
    boundaries = [round(total_steps * a / total), round(total_steps * (a + b) / total)]
    return piecewise_schedule(boundaries, [lr, lr / 10, lr / 100], warmup_steps, _warmup_lr(lr, warmup_lr))


def milestone_schedule(lr: float, milestones=PAPER_MILESTONES, gamma: float = 0.1, warmup_steps: int = 0,
                       warmup_lr: float | None = None) -> keras.optimizers.schedules.LearningRateSchedule:
    """Multiply the rate by ``gamma`` at each milestone iteration (He et al.: 32k and 48k).

    Args:
        lr: initial rate.
        milestones: increasing iteration numbers.
        gamma: factor applied at each milestone.
        warmup_steps: first iterations at ``warmup_lr``.
        warmup_lr: warm-up rate (default lr/10).
    """
    values = [lr * gamma**i for i in range(len(milestones) + 1)]
    return piecewise_schedule(milestones, values, warmup_steps, _warmup_lr(lr, warmup_lr))


def scaled_milestones(total_steps: int, milestones=PAPER_MILESTONES, iterations: int = PAPER_ITERATIONS):
    """The papers' milestones moved to a run of ``total_steps`` (same fractions: 1/2 and 3/4)."""
    return [round(total_steps * m / iterations) for m in milestones]


def cosine_schedule(lr: float, total_steps: int, warmup_steps: int = 0,
                    warmup_lr: float | None = None):
    """Cosine decay from ``lr`` to 0 over ``total_steps``, after an optional *linear* warm-up.

    The warm-up rises linearly from ``warmup_lr`` to ``lr`` (the modern form; the papers' constant
    warm-up belongs to their step schedules). Built on Keras' ``CosineDecay``.

    Args:
        lr: peak rate.
        total_steps: iterations of the whole run (warm-up included).
        warmup_steps: iterations of the linear warm-up.
        warmup_lr: rate at step 0 of the warm-up (default lr/10).
    """
    if not warmup_steps:
        return keras.optimizers.schedules.CosineDecay(lr, max(int(total_steps), 1), alpha=0.0)
    return keras.optimizers.schedules.CosineDecay(
        _warmup_lr(lr, warmup_lr), max(int(total_steps) - int(warmup_steps), 1), alpha=0.0,
        warmup_target=lr, warmup_steps=int(warmup_steps),
    )


def build_schedule(name: str, lr: float, total_steps: int, *, lr_ratio="5:3:2", milestones=None,
                   warmup_steps: int = 0, warmup_lr: float | None = None):
    """A schedule by name: ``lr_ratio``, ``milestones``, ``cosine`` or ``constant``.

    Args:
        name: one of ``SCHEDULES``.
        lr: initial (peak) rate.
        total_steps: iterations of the whole run.
        lr_ratio: ratio for ``lr_ratio``.
        milestones: iterations for ``milestones``; default the papers' 32k/48k of 64k scaled to
            ``total_steps``.
        warmup_steps: first iterations at ``warmup_lr``.
        warmup_lr: warm-up rate (default lr/10).
    """
    if name == "lr_ratio":
        return lr_ratio_schedule(lr, total_steps, lr_ratio, warmup_steps, warmup_lr)
    if name == "milestones":
        points = milestones if milestones is not None else scaled_milestones(total_steps)
        return milestone_schedule(lr, points, 0.1, warmup_steps, warmup_lr)
    if name == "cosine":
        return cosine_schedule(lr, total_steps, warmup_steps, warmup_lr)
    if name == "constant":
        return piecewise_schedule([], [lr], warmup_steps, _warmup_lr(lr, warmup_lr))
    raise ValueError(f"unknown schedule {name!r}; allowed: {', '.join(SCHEDULES)}")
