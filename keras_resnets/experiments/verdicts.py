"""Verdicts computed from pre-registered rules: reproduced / partly / not reproduced / not tested.

A rule compares two arms of an experiment on one metric, paired per seed (same seed, same fixed test
set). It is declared with the experiment, before any run, and applied here to the numbers:

- **not tested** when an arm has fewer than ``MIN_SEEDS`` finished seeds, diverged in any seed, or
  when any compared arm's mean test accuracy is below chance + ``CHANCE_MARGIN`` (the chance guard:
  networks at chance measure initialisation and regularisation, not learning);
- **reproduced** when the paired difference points the claimed way in every seed and its mean
  exceeds both its standard deviation over seeds and the rule's ``min_difference``;
- **partly** when the mean difference points the claimed way but not by that much;
- **not reproduced** otherwise (no difference, or the opposite one).

A ``ShareRule`` judges a grid experiment (one arm per cell, e.g. the CIFAR-10 study's activation x
augmentation x lr ratio): each factor's share of the variance between the cells' mean test accuracies
(main-effect sum of squares over the total, as for the study's own 36 numbers), beside the paper's shares.
The chance guard applies to every cell: one cell below chance + ``CHANCE_MARGIN`` makes the verdict
"not tested (models at chance)". Cells trained with several seeds give the seed noise, and with it the
share a factor with no effect would reach by noise alone.

Pure Python and NumPy: no Keras, so the rules are unit-tested in milliseconds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"
NOT_TESTED = "not tested"
NOT_TESTED_AT_CHANCE = "not tested (models at chance)"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_TESTED)

CHANCE_MARGIN = 0.20  # an arm must beat chance by 20 points of test accuracy to be compared
MIN_SEEDS = 3
METRICS = ("test_accuracy", "test_error", "train_error", "train_crossentropy", "test_crossentropy", "test_miou")
_HIGHER_IS_BETTER = {"test_accuracy", "test_miou"}


@dataclass(frozen=True)
class Rule:
    """A claim about two arms: ``better`` beats ``worse`` on ``metric`` (paired per seed).

    Attributes:
        claim: the paper's statement in words.
        better: label of the arm the paper finds better.
        worse: label of the arm the paper finds worse.
        metric: one of ``METRICS``; errors and cross-entropies are better lower, accuracy higher.
        min_difference: smallest mean paired difference (in the metric's unit, e.g. 0.01 = 1 point)
            that counts as "reproduced".
        guard_metric: what the chance guard compares with chance + ``CHANCE_MARGIN`` (test accuracy;
            ``test_miou`` for segmentation, whose chance is the mean IoU of predicting the most frequent
            class everywhere).
    """

    claim: str
    better: str
    worse: str
    metric: str = "test_error"
    min_difference: float = 0.0
    guard_metric: str = "test_accuracy"

    def __post_init__(self):
        for metric in (self.metric, self.guard_metric):
            if metric not in METRICS:
                raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRICS)}")

    def text(self) -> str:
        """The rule in words, as stored in the results file."""
        sign = "higher" if self.metric in _HIGHER_IS_BETTER else "lower"
        return (f"{self.better} has {sign} {self.metric} than {self.worse}, paired per seed: reproduced if the "
                f"difference has that sign in every seed and its mean exceeds its standard deviation and "
                f"{self.min_difference:g}; partly if only the mean has that sign; not reproduced otherwise; "
                f"not tested if an arm has < {MIN_SEEDS} seeds, diverged, or has mean "
                f"{self.guard_metric.replace('_', ' ')} below chance + {CHANCE_MARGIN:.2f}")

    def to_dict(self) -> dict:
        values = asdict(self)
        if self.guard_metric == "test_accuracy":
            del values["guard_metric"]  # the default; results files written before it existed stay equal
        return {**values, "text": self.text()}


def metric_value(record: dict, metric: str) -> float:
    """``metric`` of one seed's record (``test_error`` is derived from ``test_accuracy``)."""
    if metric == "test_error":
        value = record.get("test_accuracy")
        return math.nan if value is None else 1.0 - value
    value = record.get(metric)
    return math.nan if value is None else float(value)


def _by_seed(arm: dict) -> dict:
    return {int(r["seed"]): r for r in arm.get("runs", [])}


def mean_test_accuracy(arm: dict, metric: str = "test_accuracy") -> float:
    """Mean test accuracy (or ``metric``) over an arm's finished seeds (NaN if none)."""
    values = [metric_value(r, metric) for r in arm.get("runs", [])]
    return float(np.mean(values)) if values else math.nan


def judge(rule: Rule, arms: dict, chance: float) -> dict:
    """Apply ``rule`` to ``arms`` (label -> arm dict with ``runs``: per-seed records).

    Returns:
        ``{"claim", "verdict", "reason", "rule", "numbers"}``; ``numbers`` holds the per-seed paired
        differences (better-arm advantage, positive = the claimed direction), their mean and std, and
        each arm's mean test accuracy beside the chance guard's threshold.
    """
    result = {"claim": rule.claim, "rule": rule.to_dict(), "numbers": {}}
    missing = [label for label in (rule.better, rule.worse) if label not in arms]
    if missing:
        return {**result, "verdict": NOT_TESTED, "reason": f"arm(s) not run: {', '.join(missing)}"}
    better, worse = _by_seed(arms[rule.better]), _by_seed(arms[rule.worse])
    seeds = sorted(set(better) & set(worse))
    threshold = round(chance + CHANCE_MARGIN, 9)  # 0.1 + 0.2 is 0.30000000000000004
    accuracies = {label: mean_test_accuracy(arms[label], rule.guard_metric) for label in (rule.better, rule.worse)}
    accuracies = {label: (None if math.isnan(acc) else acc) for label, acc in accuracies.items()}
    numbers = {"seeds": seeds, "mean_test_accuracy": accuracies, "chance": chance, "guard": threshold}
    result["numbers"] = numbers
    if len(seeds) < MIN_SEEDS:
        return {**result, "verdict": NOT_TESTED, "reason": f"{len(seeds)} paired seed(s), need {MIN_SEEDS}"}
    diverged = [label for label, runs in ((rule.better, better), (rule.worse, worse))
                if any(runs[s].get("diverged") for s in seeds)]
    if diverged:
        return {**result, "verdict": NOT_TESTED, "reason": f"diverged: {', '.join(diverged)} (reported separately)"}
    at_chance = [label for label, acc in accuracies.items() if acc is None or not acc >= threshold]
    if at_chance:
        return {**result, "verdict": NOT_TESTED_AT_CHANCE,
                "reason": f"mean {rule.guard_metric.replace('_', ' ')} below chance + {CHANCE_MARGIN:.2f} = {threshold:.3f}: "
                          + ", ".join(f"{label} {accuracies[label]:.3f}" for label in at_chance if accuracies[label] is not None)}
    sign = 1.0 if rule.metric in _HIGHER_IS_BETTER else -1.0
    diffs = np.array([sign * (metric_value(better[s], rule.metric) - metric_value(worse[s], rule.metric))
                      for s in seeds])
    mean, std = float(diffs.mean()), float(diffs.std(ddof=1))
    numbers.update({"metric": rule.metric, "advantage_per_seed": [float(d) for d in diffs],
                    "mean_advantage": mean, "std_advantage": std,
                    "better_mean": float(np.mean([metric_value(better[s], rule.metric) for s in seeds])),
                    "worse_mean": float(np.mean([metric_value(worse[s], rule.metric) for s in seeds]))})
    if bool(np.all(diffs > 0)) and mean > std and mean > rule.min_difference:
        verdict, reason = REPRODUCED, "the claimed direction in every seed, beyond the spread"
    elif mean > 0:
        verdict, reason = PARTLY, "the claimed direction on average, within the spread or not in every seed"
    else:
        verdict, reason = NOT_REPRODUCED, "no advantage in the claimed direction"
    return {**result, "verdict": verdict, "reason": reason}


SHARE_KINDS = ("dominant", "minor", "negligible")


@dataclass(frozen=True)
class ShareRule:
    """A claim about one factor's share of the variance between the cells of a grid experiment.

    Attributes:
        claim: the paper's statement in words.
        factor: the factor (a key of every arm's ``factors``).
        kind: ``dominant`` (reproduced if the factor's share is the largest and at least ``threshold``;
            partly if the largest but below it), ``minor`` (reproduced if at most ``threshold`` and not
            the largest; partly if above ``threshold`` but not the largest) or ``negligible``
            (reproduced if at most ``threshold`` or at most twice what seed noise alone gives it; partly
            if the smallest factor's). Not reproduced otherwise.
        threshold: the share (0-1) of the rule.
        paper_shares: the paper's share of every factor (computed from its published cells).
    """

    claim: str
    factor: str
    kind: str
    threshold: float
    paper_shares: dict = None
    metric: str = "test_accuracy"

    def __post_init__(self):
        if self.kind not in SHARE_KINDS:
            raise ValueError(f"unknown share rule kind {self.kind!r}; allowed: {', '.join(SHARE_KINDS)}")

    def text(self) -> str:
        condition = {
            "dominant": f"the largest factor share and >= {self.threshold:g}; partly if the largest but below",
            "minor": f"<= {self.threshold:g} and not the largest factor share; partly if above but not the largest",
            "negligible": (f"<= {self.threshold:g} or <= twice the share seed noise alone gives it; partly if the "
                           f"smallest factor share"),
        }[self.kind]
        return (f"share of {self.factor} in the variance of the cells' mean {self.metric} (main-effect sum of "
                f"squares / total): reproduced if {condition}; not reproduced otherwise; not tested if a cell is "
                f"missing, diverged, or has mean test accuracy below chance + {CHANCE_MARGIN:.2f}")

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.text()}


def factor_shares(cells: list, factors: list) -> dict:
    """Main-effect shares of ``factors`` in the variance of the cells' values.

    Args:
        cells: ``[(levels, values)]``: each cell's factor levels (a dict) and its per-seed values.
        factors: the factors to attribute.

    Returns:
        ``{"shares": {factor: share}, "rest": interactions' share, "noise_std": seed std pooled over the
        cells with >= 2 seeds (None without), "noise_shares": {factor: expected share with no effect}}``.
    """
    means = np.array([float(np.mean(values)) for _, values in cells])
    grand = float(means.mean())
    total = float(((means - grand) ** 2).sum())
    shares, noise_shares = {}, {}
    repeated = [np.asarray(values, float) for _, values in cells if len(values) >= 2]
    noise_var = (float(np.mean([v.var(ddof=1) for v in repeated])) if repeated else None)
    cell_mean_var = (noise_var * float(np.mean([1.0 / len(values) for _, values in cells]))
                     if noise_var is not None else None)
    for factor in factors:
        levels = sorted({levels[factor] for levels, _ in cells})
        ss = 0.0
        for level in levels:
            chosen = means[[i for i, (lv, _) in enumerate(cells) if lv[factor] == level]]
            ss += len(chosen) * (float(chosen.mean()) - grand) ** 2
        shares[factor] = ss / total if total > 0 else math.nan
        if cell_mean_var is not None:
            noise_shares[factor] = (len(levels) - 1) * cell_mean_var / total if total > 0 else math.nan
    return {"shares": shares, "rest": 1.0 - sum(shares.values()) if total > 0 else math.nan,
            "noise_std": None if noise_var is None else math.sqrt(noise_var), "noise_shares": noise_shares}


def rank_correlation(x, y) -> float:
    """Spearman's rank correlation (ties get their mean rank)."""
    def ranks(values):
        values = np.asarray(values, float)
        order = np.empty(len(values))
        order[np.argsort(values, kind="mergesort")] = np.arange(1, len(values) + 1)
        for value in np.unique(values):
            order[values == value] = order[values == value].mean()
        return order

    return float(np.corrcoef(ranks(x), ranks(y))[0, 1])


def judge_shares(rule: ShareRule, arms: dict, chance: float, factors: list) -> dict:
    """Apply a ``ShareRule`` to the cells ``arms`` (label -> arm dict with ``factors`` and ``runs``)."""
    result = {"claim": rule.claim, "rule": rule.to_dict(), "numbers": {}}
    threshold = round(chance + CHANCE_MARGIN, 9)
    missing = [label for label, arm in arms.items() if not arm.get("runs")]
    if missing:
        return {**result, "verdict": NOT_TESTED, "reason": f"{len(missing)} of {len(arms)} cells not run"}
    diverged = [label for label, arm in arms.items() if any(r.get("diverged") for r in arm["runs"])]
    if diverged:
        return {**result, "verdict": NOT_TESTED, "reason": f"diverged: {', '.join(diverged)} (reported separately)"}
    accuracies = {label: mean_test_accuracy(arm) for label, arm in arms.items()}
    at_chance = sorted((acc, label) for label, acc in accuracies.items() if not acc >= threshold)
    result["numbers"] = {"chance": chance, "guard": threshold, "cells": len(arms),
                         "lowest_cell": min((acc, label) for label, acc in accuracies.items())}
    if at_chance:
        return {**result, "verdict": NOT_TESTED_AT_CHANCE,
                "reason": f"{len(at_chance)} of {len(arms)} cells below chance + {CHANCE_MARGIN:.2f} = {threshold:.3f} "
                          f"(lowest: {at_chance[0][1]} {at_chance[0][0]:.3f})"}
    cells = [(arm["factors"], [metric_value(r, rule.metric) for r in arm["runs"]]) for arm in arms.values()]
    analysis = factor_shares(cells, factors)
    shares, share = analysis["shares"], analysis["shares"][rule.factor]
    largest = max(shares, key=shares.get)
    result["numbers"].update({"metric": rule.metric, "factor": rule.factor, "share": share, **analysis,
                              "paper_shares": rule.paper_shares or {}})
    noise = analysis["noise_shares"].get(rule.factor)
    if rule.kind == "dominant":
        ok, part = largest == rule.factor and share >= rule.threshold, largest == rule.factor
    elif rule.kind == "minor":
        ok, part = largest != rule.factor and share <= rule.threshold, largest != rule.factor
    else:
        ok = share <= rule.threshold or (noise is not None and share <= 2 * noise)
        part = min(shares, key=shares.get) == rule.factor
    if ok:
        return {**result, "verdict": REPRODUCED, "reason": "the factor's share meets the rule"}
    if part:
        return {**result, "verdict": PARTLY, "reason": "the factor's share meets the rule's weaker condition"}
    return {**result, "verdict": NOT_REPRODUCED, "reason": "the factor's share contradicts the claim"}


def apply_rule(rule, arms: dict, chance: float) -> dict:
    """``judge`` for a ``Rule``, ``judge_shares`` for a ``ShareRule`` (factors: those of the arms)."""
    if isinstance(rule, ShareRule):
        factors = sorted({key for arm in arms.values() for key in arm.get("factors", {})})
        return judge_shares(rule, arms, chance, factors)
    return judge(rule, arms, chance)


def summarise(verdicts: list) -> str:
    """One verdict for a list of claim verdicts: all reproduced -> reproduced; any tested claim
    reproduced or partly -> partly; all tested claims not reproduced -> not reproduced; none tested
    -> the first "not tested" reason's verdict."""
    tested = [v["verdict"] for v in verdicts if not v["verdict"].startswith(NOT_TESTED)]
    if not tested:
        return verdicts[0]["verdict"] if verdicts else NOT_TESTED
    if len(tested) == len(verdicts) and all(v == REPRODUCED for v in tested):
        return REPRODUCED
    if any(v in (REPRODUCED, PARTLY) for v in tested):
        return PARTLY
    return NOT_REPRODUCED
