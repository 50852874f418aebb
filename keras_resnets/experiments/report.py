"""Tables of a results file, and the README's Findings table generated from ``notebooks/results/*.json``.

    python -m keras_resnets.experiments.report --readme README.md   # rewrite the generated block

The README block between ``<!-- findings:start -->`` and ``<!-- findings:end -->`` is this module's
output; ``tests/experiments/test_report.py`` fails when the README and the results files disagree.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from keras_resnets.experiments.edge import MEASUREMENTS
from keras_resnets.experiments.spec import EXPERIMENTS

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
NOT_RERUN = "not yet rerun under the protocol"
_PERCENT = {"test_accuracy", "test_error", "train_error", "test_miou"}


def _values(values, metric):
    values = np.array([np.nan if v is None else v for v in values], dtype=float)
    return values * (100.0 if metric in _PERCENT else 1.0)


def mean_std(values, metric="test_accuracy", digits=1) -> str:
    """``mean ± std`` over seeds (percent for accuracies and errors)."""
    values = _values(values, metric)
    if not len(values):
        return "–"
    std = values.std(ddof=1) if len(values) > 1 else 0.0
    return f"{_fixed(values.mean(), digits)} ± {_fixed(std, digits)}"


def _fixed(value: float, digits: int) -> str:
    """``value`` to ``digits`` decimals, without the sign of a value that rounds to zero (``-0.0``)."""
    text = f"{value:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def arms_table(results: dict) -> str:
    """Per arm: seeds, test accuracy per seed and mean ± std, training error and cross-entropy (no L2
    penalty), parameters, steps, and the paper's number (segmentation: test mean IoU instead)."""
    if results.get("chance_metric") == "test_miou":
        return _miou_table(results)
    rows = []
    for arm in results["arms"]:
        accuracy = _values(arm.get("test_accuracy", []), "test_accuracy")
        rows.append([arm["name"], len(arm.get("seeds", [])), " / ".join(f"{a:.1f}" for a in accuracy),
                     mean_std(arm.get("test_accuracy", [])), mean_std(arm.get("train_error", []), "train_error"),
                     mean_std(arm.get("train_crossentropy", []), "train_crossentropy", 3),
                     (arm.get("params") or ["–"])[0], (arm.get("steps") or ["–"])[0], arm.get("paper", "")])
    return markdown_table(["arm", "seeds", "test acc. % per seed", "test acc. %", "training error %",
                           "training cross-entropy", "params", "steps", "paper"], rows)


def _shares_text(numbers: dict) -> str:
    paper = numbers.get("paper_shares", {})
    text = ", ".join(f"{factor} {100 * share:.1f} %" + (f" (study {100 * paper[factor]:.1f} %)" if factor in paper else "")
                     for factor, share in numbers["shares"].items())
    text = f"shares of the variance between {numbers['cells']} cells: {text}, interactions {100 * numbers['rest']:.1f} %"
    if numbers.get("noise_std") is not None:
        text += (f"; seed noise std {100 * numbers['noise_std']:.1f} points (share a factor with no effect would "
                 f"reach: {', '.join(f'{k} {100 * v:.1f} %' for k, v in numbers['noise_shares'].items())})")
    return text


def _miou_table(results: dict) -> str:
    rows = []
    for arm in results["arms"]:
        miou = _values(arm.get("test_miou", []), "test_miou")
        start = [v for v in arm.get("start_miou", []) if v is not None]
        rows.append([arm["name"], len(arm.get("seeds", [])), " / ".join(f"{v:.1f}" for v in miou),
                     mean_std(arm.get("test_miou", []), "test_miou"),
                     mean_std(start, "test_miou") if start else "–", (arm.get("params") or ["–"])[0],
                     (arm.get("steps") or ["–"])[0], arm.get("paper", "")])
    return markdown_table(["arm", "seeds", "test mean IoU % per seed", "test mean IoU %",
                           "mean IoU % before its own training", "params", "steps", "paper"], rows)


def cost_table(results: dict) -> str:
    """Per arm: parameters, training time per run (wall and process CPU time over all threads), CPU ms
    per step, and test accuracy per CPU-second (all of it, and the part above chance); mean ± std over seeds."""
    chance = results.get("chance") or 0.0
    rows = []
    for arm in results["arms"]:
        runs = [r for r in arm["runs"] if r.get("cpu_seconds") and r.get("test_accuracy") is not None]
        if not runs:
            continue
        cpu = np.array([r["cpu_seconds"] for r in runs])
        acc = np.array([r["test_accuracy"] for r in runs])
        rows.append([arm["name"], runs[0]["params"], mean_std([r["seconds"] for r in runs], "seconds", 0),
                     mean_std(cpu, "cpu_seconds", 0), mean_std(1e3 * cpu / np.array([r["steps"] for r in runs]), "ms", 0),
                     mean_std(acc), mean_std(100 * acc / cpu, "per_cpu_second", 3),
                     mean_std(100 * (acc - chance) / cpu, "per_cpu_second", 3)])
    return markdown_table(["arm", "params", "wall s per run", "CPU s per run", "CPU ms per step", "test acc. %",
                           "test acc. points per CPU-second", "points above chance per CPU-second"], rows)


def describe(verdict: dict) -> str:
    """The numbers behind one verdict, in words."""
    numbers = verdict.get("numbers", {})
    rule = verdict["rule"]
    if "factor" in rule:
        if "shares" in numbers:
            return _shares_text(numbers)
        lowest = numbers.get("lowest_cell")
        return f"lowest cell {lowest[1]} {100 * lowest[0]:.1f} %" if lowest else ""
    accuracy = numbers.get("mean_test_accuracy", {})
    text = ", ".join(f"{label} {100 * acc:.1f} %" for label, acc in accuracy.items() if acc is not None)
    guard = {"test_accuracy": "test acc.", "test_miou": "test mean IoU"}[rule.get("guard_metric", "test_accuracy")]
    text = f"{guard} {text}" if text else ""
    if "mean_advantage" in numbers:
        scale = 100.0 if numbers["metric"] in _PERCENT else 1.0
        unit = " points" if scale == 100.0 else ""
        metric = {"test_miou": "test mean IoU"}.get(numbers["metric"], numbers["metric"].replace("_", " "))
        text = (f"{metric} {rule['better']} {scale * numbers['better_mean']:.2f} vs "
                f"{rule['worse']} {scale * numbers['worse_mean']:.2f}: advantage {scale * numbers['mean_advantage']:+.2f} "
                f"± {scale * numbers['std_advantage']:.2f}{unit} (seeds {', '.join(map(str, numbers['seeds']))}); "
                + text)
    return text


def _tested(verdict: dict) -> bool:
    return "mean_advantage" in verdict["numbers"] or "shares" in verdict["numbers"]


def verdicts_table(results: dict) -> str:
    rows = [[v["claim"], v["verdict"] + ("" if _tested(v) else f" ({v['reason']})"), describe(v)]
            for v in results["verdicts"]]
    return markdown_table(["claim (rule fixed before the run)", "verdict", "numbers"], rows)


def show(results: dict) -> None:
    """Display a results file's tables in a notebook (plain text elsewhere)."""
    text = (f"**{results['title']}** — {results['scale']} scale, {results['dataset']}, chance "
            f"{100 * (results['chance'] or 0):.0f} %"
            f"{' mean IoU (most frequent class everywhere)' if results.get('chance_metric') == 'test_miou' else ''}, "
            f"{results['backend']}, {results['cpu']}, "
            f"{results['wall_seconds'] / 60:.1f} min of training"
            f"{'' if results.get('complete') else ' (INCOMPLETE: runs missing)'}\n\n"
            f"{arms_table(results)}\n\n*paper*: {results.get('metric_note', '')}\n\nOverall: **{results['summary']}**\n\n{verdicts_table(results)}"
            + _correlation_text(results))
    _display(text)


def edge_table(results: dict) -> str:
    """A measurement's rows (``edge.py``): per mode, top-1 and agreement with Keras on the same images,
    size, and batch-1 latency (median of round medians, the rounds' range, p10-p90 of every call)."""
    float32 = next((r for r in results["rows"] if r["mode"] == "float32" and r["status"] == "ok"), None)
    rows = []
    for row in results["rows"]:
        if row["status"] != "ok":
            rows.append([row["mode"], row["status"], "–", "–", "–", "–", "–", "–", row.get("error", "")[:160]])
            continue
        lat = row["latency"]
        ratio = f"{row['size_bytes'] / float32['size_bytes']:.2f}" if float32 else "–"
        note = row.get("runtime", "") + (f"; kept in float: {row['kept_float']}" if row.get("kept_float") else "")
        rows.append([row["mode"], row["status"], f"{100 * row['top1']:.2f}", f"{100 * row['agreement']:.2f}",
                     f"{row['size_bytes'] / 1024:.1f}", ratio,
                     f"{lat['median_ms']:.3f} [{min(lat['round_medians_ms']):.3f}–{max(lat['round_medians_ms']):.3f}]",
                     f"{lat['p10_ms']:.3f}–{lat['p90_ms']:.3f}", note])
    return markdown_table(["mode", "status", "top-1 %", "agrees with Keras %", "size KiB", "× float32 size",
                           "latency ms: median [rounds' range]", "p10–p90 ms", "runtime"], rows)


def show_measurement(results: dict) -> None:
    """Display a measurement's results file (no verdict: it measures)."""
    classifier = results["classifier"]
    text = (f"**{results['title']}** — {results['scale']} scale, {classifier['model']} {classifier['kwargs']} "
            f"({classifier['params']} parameters, seed {classifier['seed']}), {results['dataset']} "
            f"{'×'.join(map(str, results['protocol']['budget']['image_size']))}, {results['test_images']} test "
            f"images (chance {100 * results['chance']:.0f} %), {results['backend']}, {results['cpu']}, load average "
            f"{results['load_average'][0]:.1f}, {results['wall_seconds'] / 60:.1f} min in all\n\n{edge_table(results)}"
            f"\n\n**{results['summary']}**")
    _display(text)


def _display(text: str) -> None:
    try:
        from IPython.display import Markdown, display

        display(Markdown(text))
    except ImportError:
        print(text)


def _correlation_text(results: dict) -> str:
    correlation = results.get("rank_correlation")
    if not correlation:
        return ""
    text = (f"\n\nSpearman rank correlation of our {correlation['cells']} cells with the paper's: "
            f"{correlation['spearman']:.2f} ({correlation['note']}).")
    shares = results.get("variance_shares")
    paper = next((v["rule"]["paper_shares"] for v in results["verdicts"] if "paper_shares" in v["rule"]), {})
    if shares:
        text += (f"\n\nShares of the variance between all {len(results['arms'])} cells ({shares['note']}): "
                 + _shares_text({**shares, "cells": len(results["arms"]), "paper_shares": paper}).split(": ", 1)[1] + ".")
    return text


def _measurement_row(results: dict) -> list:
    ok = [r for r in results["rows"] if r["status"] == "ok"]
    float32 = next((r for r in ok if r["mode"] == "float32"), None)
    parts = []
    for row in ok:
        size = f", {row['size_bytes'] / float32['size_bytes']:.2f}× size" if float32 and row is not float32 else ""
        agrees = "" if row["mode"] == "Keras" else f" (agrees {100 * row['agreement']:.1f} %{size})"
        parts.append(f"{row['mode']} {100 * row['top1']:.1f} %{agrees}")
    failed = [r["mode"] for r in results["rows"] if r["status"] != "ok"]
    budget = results["protocol"]["budget"]
    classifier = results["classifier"]
    text = (f"{classifier['model']} {classifier['kwargs']}, {results['dataset']} "
            f"{'×'.join(map(str, budget['image_size']))}, top-1 on {results['test_images']} test images: "
            + "; ".join(parts) + (f"; failed the package's verification: {', '.join(failed)}" if failed else ""))
    return [results["title"], "–", text, results["summary"],
            f"[{results['stem'][:2]}](notebooks/{results['stem']}.ipynb)"]


def findings_rows(results_dir: str) -> list:
    """Rows of the README table: every verdict of every experiment with a laptop-scale results file (an
    interrupted run is marked incomplete; its claims whose arms lack seeds are "not tested"); one "not
    yet rerun" row for the others."""
    rows = []
    for experiment in EXPERIMENTS.values():
        path = os.path.join(results_dir, f"{experiment.stem}.json")
        notebook = f"[{experiment.notebook_stem[:2]}](notebooks/{experiment.notebook_stem}.ipynb)"
        results = None
        if os.path.isfile(path):
            with open(path) as f:
                results = json.load(f)
        if results is None or not results.get("verdicts"):
            rows.append([experiment.title, experiment.metric_note, "–", NOT_RERUN, notebook])
            continue
        arms = {a["name"]: a for a in results["arms"]}
        paper = {a.label: a.paper for a in experiment.arms_at("laptop")}  # citations: the declaration's
        budget = results["protocol"]["budget"]
        done = sum(len(a["seeds"]) for a in results["arms"])
        planned = sum(a.get("train", {}).get("seeds", budget["seeds"]) for a in results["arms"])
        extra = f" + {budget['extra_steps']} from its checkpoint" if budget.get("extra_steps") else ""
        setting = (f"{results['dataset']} {'×'.join(map(str, budget['image_size']))}, {budget['steps']} steps{extra}"
                   + ("" if results.get("complete") else
                      f" (run interrupted: {done} of {planned} arm-seed runs done)"))
        for verdict in results["verdicts"]:
            rule = verdict["rule"]
            if "factor" in rule:
                published = f"{rule['factor']}: {100 * rule['paper_shares'][rule['factor']]:.1f} % of the variance"
            else:
                published = "; ".join(f"{label}: {paper[label]}" for label in (rule["better"], rule["worse"])
                                      if paper.get(label))
            verdict_text = verdict["verdict"] + ("" if _tested(verdict) else f" ({verdict['reason']})")
            rows.append([verdict["claim"], published, f"{setting}: {describe(verdict)}".rstrip(": "), verdict_text,
                         notebook])
    for measurement in MEASUREMENTS.values():
        path = os.path.join(results_dir, f"{measurement.stem}.json")
        if os.path.isfile(path):
            with open(path) as f:
                rows.append(_measurement_row(json.load(f)))
        else:
            rows.append([measurement.title, "–", "–", NOT_RERUN, f"[{measurement.stem[:2]}](notebooks/{measurement.stem}.ipynb)"])
    return rows


def findings_block(results_dir: str) -> str:
    table = markdown_table(["paper claim", "published", "ours (mean over seeds; advantage = paired difference "
                            "± its std)", "verdict", "notebook"], findings_rows(results_dir))
    return f"{START}\n{table}\n{END}"


def replace_block(readme: str, block: str) -> str:
    if START not in readme or END not in readme:
        raise ValueError(f"README has no generated block ({START} ... {END})")
    head, rest = readme.split(START, 1)
    return head + block + rest.split(END, 1)[1]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the README's Findings table from results files.")
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--results-dir", default=os.path.join("notebooks", "results"))
    args = parser.parse_args(argv)
    with open(args.readme) as f:
        text = f.read()
    updated = replace_block(text, findings_block(args.results_dir))
    with open(args.readme, "w") as f:
        f.write(updated)
    print(f"{args.readme}: Findings table {'updated' if updated != text else 'unchanged'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
