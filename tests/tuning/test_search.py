"""A real search: its trials train, and the study table, heatmap and best config render from them."""
import csv
import inspect
import json

import pytest

from tests.tuning.conftest import SMALL_SPACE, tiny_tune_args

pytestmark = pytest.mark.tf_only


@pytest.fixture(scope="module")
def finished_search(tmp_path_factory, digits):
    """A grid search over the four cells of ``SMALL_SPACE``, one epoch each."""
    from keras_resnets.tuning import tune

    runs = tmp_path_factory.mktemp("runs")
    return tune(**tiny_tune_args(datasets=digits, runs_dir=str(runs), run_name="grid")), runs


def test_every_cell_trains_once_and_reports_its_objective(finished_search):
    result, _ = finished_search
    cells = [(t["values"]["activation"], t["values"]["lr_ratio"]) for t in result.trials]
    assert sorted(cells) == sorted((a, r) for a in SMALL_SPACE["activation"] for r in SMALL_SPACE["lr_ratio"])
    assert all(t["status"] == "COMPLETED" and 0.0 <= t["score"] <= 1.0 and t["epochs"] == 1 for t in result.trials)
    assert result.best["score"] == max(t["score"] for t in result.trials)


def test_table_heatmap_and_best_config_render_from_the_trials(finished_search):
    from keras_resnets.training import train

    result, _ = finished_search
    paths = result.paths
    markdown = open(paths["results.md"]).read()
    assert "| augmentation | activation | 2:1:1 | 5:3:2 |" in markdown
    for trial in result.trials:
        values = trial["values"]
        row = f"| {values['augment']} | {values['activation']} |"
        line = next(line for line in markdown.splitlines() if line.startswith(row))
        assert f"{100 * trial['score']:.2f}" in line
    with open(paths["results.csv"]) as f:
        rows = list(csv.DictReader(f))
    assert {r["trial_id"] for r in rows} == {t["trial_id"] for t in result.trials}
    with open(paths["heatmap.png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    best = json.load(open(paths["best_config.json"]))
    assert best["activation"] == result.best["values"]["activation"]
    assert best["lr_ratio"] == result.best["values"]["lr_ratio"] and best["schedule"] == "lr_ratio"
    assert best["command"].startswith("keras-resnets train --model cifar_resnet20")
    train_keywords = set(inspect.signature(train).parameters)
    assert set(best) - {"command", "val_accuracy", "trial_id"} <= train_keywords


def test_report_command_rerenders_a_search(finished_search, capsys):
    from keras_resnets.cli import main

    result, runs = finished_search
    heatmap = result.paths["heatmap.png"]
    before = open(result.paths["results.md"]).read()
    (runs / "grid" / "tune" / "results.md").unlink()
    assert main(["tune", "--report", str(runs / "grid")]) == 0
    assert open(result.paths["results.md"]).read() == before
    assert heatmap in capsys.readouterr().out
