"""Gradient-flow analysis: unit discovery and finite per-unit gradient norms."""
import numpy as np
import pytest

pytestmark = pytest.mark.tf_only


def test_gradient_flow_measures_every_unit(tmp_path):
    from keras_resnets.data import load_dataset
    from keras_resnets.training.analysis import gradient_flow, plot_gradient_flow

    data = load_dataset("digits", batch_size=32, image_size=(16, 16), channels=3)
    flows = [gradient_flow(v, 8, data, steps=2) for v in ("original", "pre-activation")]
    for flow in flows:
        assert flow.units == ["stage1_unit1", "stage2_unit1", "stage3_unit1"]
        assert np.all(np.isfinite(flow.at_init)) and min(flow.at_init) > 0
        assert flow.at_init != flow.after_training
    plot_gradient_flow(flows, 8, str(tmp_path / "flow.png"))
    assert (tmp_path / "flow.png").stat().st_size > 0
    with pytest.raises(ValueError, match="'dense'.*original, pre-activation, plain"):
        gradient_flow("dense", 8, data)
