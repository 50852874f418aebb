"""Probes taken on an experiment's networks, and the rendering of a measurement without verdicts."""
import json

import numpy as np
import pytest

from keras_resnets.experiments.probes import heat_statistics, normalise_per_target
from keras_resnets.experiments.report import NOT_RERUN, findings_rows


@pytest.mark.backend_independent
def test_heat_map_statistics_count_connected_pairs_only():
    """A dense block's map has no cell where the source comes after the target; those NaN cells are not
    pairs. Counting them as "below 0.5" turned a true share of 1.00 into 28/49 = 0.57 on DenseNet-BC-40's
    7x7 map (6/9 here)."""
    heat = np.array([[1.0, 0.9, 0.8], [np.nan, 1.0, 0.6], [np.nan, np.nan, 1.0]])
    stats = heat_statistics(heat)
    assert stats["pairs"] == 6 and stats["share_at_least_half"] == 1.0
    assert np.nanmean(heat >= 0.5) == pytest.approx(6 / 9)  # the old, wrong count
    assert stats["smallest"] == pytest.approx(0.6)
    assert np.allclose(np.nanmax(normalise_per_target(2 * heat), axis=0), 1.0)


@pytest.mark.tf_only
def test_dense_block_map_reads_every_source_of_the_first_block():
    import keras

    from keras_resnets.experiments.probes import dense_block_weights, heat_array
    from keras_resnets.models import create_model

    keras.utils.set_random_seed(0)
    model = create_model("cifar_densenet_bc100", depth=22, input_shape=(8, 8, 3), classes=10)
    heat = heat_array(dense_block_weights(model))
    assert heat.shape == (4, 4)  # block input + 3 layers as sources; 3 layers + the transition as targets
    assert np.isnan(heat[np.tril_indices(4, -1)]).all() and not np.isnan(heat[np.triu_indices(4)]).any()
    # He initialisation: every source starts with about the same mean |w| (the control's flat map)
    assert heat_statistics(normalise_per_target(heat))["smallest"] > 0.8
    assert dense_block_weights(create_model("cifar_resnet20", depth=8, input_shape=(8, 8, 3), classes=10)) is None


@pytest.mark.backend_independent
def test_a_measurement_renders_its_numbers_and_no_verdict(tmp_path):
    rows = [{"mode": "Keras", "status": "ok", "top1": 0.8, "agreement": 1.0, "size_bytes": 4000},
            {"mode": "float32", "status": "ok", "top1": 0.8, "agreement": 1.0, "size_bytes": 1000},
            {"mode": "int8", "status": "ok", "top1": 0.79, "agreement": 0.98, "size_bytes": 250},
            {"mode": "QAT int8 (Keras 3 layers)", "status": "failed verification", "error": "top-1 drop 3 points"}]
    results = {"measurement": "edge_deployment", "stem": "06_edge_deployment", "title": "Edge", "rows": rows,
               "summary": "measured (no verdict: not a paper claim)", "dataset": "textured_digits", "test_images": 100,
               "classifier": {"model": "cifar_resnet20", "kwargs": {"depth": 8}},
               "protocol": {"budget": {"image_size": [16, 16]}}, "verdicts": []}
    assert [r[3] for r in findings_rows(str(tmp_path)) if r[-1].startswith("[06]")] == [NOT_RERUN]
    (tmp_path / "06_edge_deployment.json").write_text(json.dumps(results))
    (row,) = [r for r in findings_rows(str(tmp_path)) if r[-1].startswith("[06]")]
    assert row[3] == "measured (no verdict: not a paper claim)"
    assert "int8 79.0 % (agrees 98.0 %, 0.25× size)" in row[2] and "Keras 80.0 %;" in row[2]
    assert row[2].endswith("failed the package's verification: QAT int8 (Keras 3 layers)")
