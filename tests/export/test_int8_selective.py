"""Per-layer int8 sensitivity report, selective quantization (--keep-float) and auto's use of it."""
from __future__ import annotations

import json

import numpy as np
import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import ExportError

pytestmark = pytest.mark.tf_only

FAST = {"eval_samples": 200, "calibration_samples": 64}
OUTLIER = 300.0


@pytest.fixture()
def outlier_run(tmp_path, digits_run):
    """The trained run with one channel of an inner activation scaled up OUTLIER-fold and the next
    convolution's weights for it scaled down: the float function is unchanged (ReLU is positively
    homogeneous), but that tensor's int8 grid is now too coarse for its other channels, so full int8
    misses the budget and a layer kept in float fixes it."""
    import keras

    from export_helpers import write_run

    model = keras.saving.load_model(digits_run / "best.keras")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    gamma, beta, mean, variance = norms[1].get_weights()
    gamma[0] *= OUTLIER
    beta[0] *= OUTLIER
    norms[1].set_weights([gamma, beta, mean, variance])
    (kernel,) = convs[2].get_weights()
    kernel[:, :, 0, :] /= OUTLIER
    convs[2].set_weights([kernel])
    return write_run(tmp_path / "outlier", model, epochs=8)


def test_every_int8_export_ships_a_sensitivity_table_and_chart_most_harmful_first(fresh_run):
    result = export_model(fresh_run, quantize="int8", **FAST)
    sensitivity = result.report["sensitivity"]
    rows = sensitivity["layers"]
    scores = [r["rmse_over_scale"] for r in rows]
    assert len(rows) >= 7 and scores == sorted(scores, reverse=True) and min(scores) > 0
    assert {r["op"] for r in rows} >= {"CONV_2D", "ADD", "FULLY_CONNECTED"}
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    chart = result.artifact.parent / sensitivity["chart"]
    assert chart.name == "tiny_resnet_int8.sensitivity.png" and chart.read_bytes()[:4] == b"\x89PNG"
    markdown = result.report_md.read_text()
    assert "Per-layer int8 sensitivity (most harmful first)" in markdown and f"`{rows[0]['layer']}`" in markdown
    assert json.loads(result.report_json.read_text())["sensitivity"]["layers"][0] == rows[0]


def test_keep_float_named_layer_leaves_that_op_in_float_and_is_verified(fresh_run):
    int8 = export_model(fresh_run, quantize="int8", **FAST).report
    worst = int8["sensitivity"]["layers"][0]
    result = export_model(fresh_run, quantize="int8", keep_float=worst["layer"], **FAST)
    report = result.report
    assert result.artifact.name == "tiny_resnet_int8-selective.tflite"
    assert report["keep_float"]["layers"] == [worst["layer"]] and report["keep_float"]["mode"] == "named"
    assert report["operators"]["counts"].get("DEQUANTIZE", 0) >= 1 and report["io"]["input"] == "int8"
    assert all(c["passed"] for c in report["checks"] if c["required"])
    from ai_edge_litert.interpreter import Interpreter

    tensors = {t["name"]: t["dtype"] for t in Interpreter(model_path=str(result.artifact)).get_tensor_details()}
    assert tensors[worst["tensor"]] == np.float32  # the kept op computes in float
    assert report["size_bytes"] > int8["size_bytes"]


def test_keep_float_auto_with_nothing_kept_is_named_and_reported_as_int8(fresh_run, capsys):
    from keras_resnets.cli import main

    assert main(["export", str(fresh_run), "--quantize", "int8", "--keep-float", "auto", "--eval-samples", "200",
                 "--calibration-samples", "64"]) == 0
    out = capsys.readouterr().out
    report = json.loads((fresh_run / "export" / "tiny_resnet_int8.report.json").read_text())
    assert report["keep_float"]["layers"] == [] and report["precision"] == "int8"
    assert not list((fresh_run / "export").glob("*selective*"))
    rows = len(report["sensitivity"]["layers"])
    assert f"kept 0 of {rows} quantized layers in float (int8 alone meets the budget)" in out


def test_keep_float_unknown_layer_is_one_line_naming_the_choices(fresh_run):
    with pytest.raises(ExportError, match=r"--keep-float: no quantized layer named 'nope'; choose from .*conv2d"):
        export_model(fresh_run, quantize="int8", keep_float="nope", **FAST)
    with pytest.raises(ExportError, match="--keep-float applies to --quantize int8"):
        export_model(fresh_run, quantize="dynamic", keep_float="auto", **FAST)
    assert not list((fresh_run / "export").glob("*.tflite")) if (fresh_run / "export").exists() else True


def test_keep_float_auto_keeps_the_most_harmful_layers_until_the_budget_is_met(outlier_run):
    """Selective quantization: int8 misses the budget on the outlier model; auto keep-float meets it."""
    with pytest.raises(ExportError, match=r"tiny_resnet_int8 failed verification \(accuracy_budget\)"):
        export_model(outlier_run, quantize="int8", **FAST)
    report = export_model(outlier_run, quantize="int8", keep_float="auto", **FAST).report
    selection = report["keep_float"]
    assert selection["mode"] == "auto" and selection["search"][-1]["drop_points"] <= 1.0
    assert all(step["drop_points"] > 1.0 for step in selection["search"][:-1])
    ranked = [r["layer"] for r in report["sensitivity"]["layers"]]
    assert selection["layers"] == ranked[:len(selection["layers"])]  # most harmful first
    assert report["accuracy"]["drop_points"] <= 1.0 and report["precision"] == "int8-selective"


def test_auto_considers_selective_int8_when_int8_misses_the_budget(outlier_run):
    report = export_model(outlier_run, quantize="auto", **FAST).report
    candidates = {c["precision"]: c for c in report["auto"]["candidates"]}
    assert "accuracy_budget" in candidates["int8"]["failed_checks"]
    assert not candidates["int8-selective"]["failed_checks"]
    passing = [c for c in candidates.values() if not c["failed_checks"]]
    assert report["size_bytes"] == min(c["size_bytes"] for c in passing)


def test_cli_keep_float_and_optimize_for(fresh_run, capsys):
    from keras_resnets.cli import main as cli_main

    assert cli_main(["export", str(fresh_run), "--quantize", "int8", "--keep-float", "nope",
                     "--calibration-samples", "32", "--eval-samples", "64"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no quantized layer named 'nope'" in err and "Traceback" not in err
    assert cli_main(["export", str(fresh_run), "--quantize", "auto", "--optimize-for", "host-latency",
                     "--calibration-samples", "32", "--eval-samples", "64"]) == 0
    out = capsys.readouterr().out
    assert "decided by it" in out and "p10-p90 spread" in out
