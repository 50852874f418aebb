"""The README's Findings table is generated from notebooks/results/*.json and must agree with them."""
import json
import pathlib

import pytest

from keras_resnets.experiments.report import END, NOT_RERUN, START, findings_block, findings_rows, replace_block
from keras_resnets.experiments.spec import get_experiment
from keras_resnets.experiments.verdicts import apply_rule, judge

pytestmark = pytest.mark.backend_independent
ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_readme_findings_table_matches_the_results_files():
    """Regenerate with ``python -m keras_resnets.experiments.report`` after a run."""
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(START):readme.index(END) + len(END)]
    assert block == findings_block(str(ROOT / "notebooks" / "results"))


def test_committed_results_files_verdicts_follow_from_their_numbers():
    """Every committed verdict is what its rule gives on the stored runs (none typed by hand)."""
    for path in sorted((ROOT / "notebooks" / "results").glob("*.json")):
        results = json.loads(path.read_text())
        if "measurement" in results:  # a measurement has no verdict rules
            assert results["verdicts"] == [], path.name
            continue
        experiment = get_experiment(results["experiment"])
        arms = {a["name"]: a for a in results["arms"]}
        for rule, stored in zip(experiment.rules, results["verdicts"]):
            assert apply_rule(rule, arms, results["chance"])["verdict"] == stored["verdict"], (path.name, rule.claim)


def test_complete_results_give_one_row_per_claim_and_incomplete_ones_say_not_rerun(tmp_path):
    experiment = get_experiment("degradation")
    runs = {"plain20": 0.70, "plain56": 0.60, "resnet20": 0.72, "resnet56": 0.75}
    arms = [{"name": label, "paper": "x", "seeds": [0, 1, 2],
             "runs": [{"seed": s, "test_accuracy": acc + 0.01 * s, "train_error": 1 - acc, "steps": 600}
                      for s in range(3)]} for label, acc in runs.items()]
    verdicts = [judge(rule, {a["name"]: a for a in arms}, 0.1) for rule in experiment.rules]
    results = {"complete": True, "arms": arms, "verdicts": verdicts, "dataset": "textured_digits",
               "protocol": {"budget": {"image_size": [12, 12], "steps": 600, "seeds": 3}}}
    (tmp_path / "01_degradation.json").write_text(json.dumps(results))
    rows = findings_rows(str(tmp_path))
    degradation = [r for r in rows if r[-1].startswith("[01]") and r[3] != NOT_RERUN]  # not: its longer version
    assert [r[0] for r in degradation] == [rule.claim for rule in experiment.rules]
    assert degradation[0][3] == "reproduced" and "advantage +10.00" in degradation[0][2]
    assert [r[3] for r in rows if r[-1].startswith("[02]")] == ["not yet rerun under the protocol"]
    for arm in arms[2:]:  # an interrupted run: the ResNet arms have one seed
        arm["runs"], arm["seeds"] = arm["runs"][:1], arm["seeds"][:1]
    results.update(complete=False, verdicts=[judge(rule, {a["name"]: a for a in arms}, 0.1)
                                             for rule in experiment.rules])
    (tmp_path / "01_degradation.json").write_text(json.dumps(results))
    rows = [r for r in findings_rows(str(tmp_path)) if r[-1].startswith("[01]") and r[3] != NOT_RERUN]
    assert [r[3] for r in rows] == ["reproduced", "not tested (1 paired seed(s), need 3)",
                                    "not tested (1 paired seed(s), need 3)", "reproduced"]
    assert "run interrupted: 8 of 12 arm-seed runs done" in rows[0][2]
    with pytest.raises(ValueError, match="no generated block"):
        replace_block("# README\n", "x")


def test_a_mean_that_rounds_to_zero_has_no_sign():
    """Training errors recovered from running means can be -2e-4; the table writes 0.0, not -0.0."""
    from keras_resnets.experiments.report import mean_std

    assert mean_std([-0.0002, -0.0001], "train_error") == "0.0 ± 0.0"
    assert mean_std([-0.02], "train_error") == "-2.0 ± 0.0"
