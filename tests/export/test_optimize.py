"""QAT and pruning through the tf_keras bridge (worker process), and the bridge itself."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from keras_resnets.export import export_model
from keras_resnets.export.errors import UnsupportedOperationError
from keras_resnets.export.optimize import FineTuneOptions

pytestmark = pytest.mark.tf_only

QUICK = FineTuneOptions(epochs=1, max_images=256, batch_size=32)
FAST = {"eval_samples": 200, "calibration_samples": 100, "fine_tune": QUICK}


def test_pruning_then_qat_end_to_end(fresh_run):
    """Weights cross the bridge exactly; pruning reaches its sparsity; QAT yields a full-integer model."""
    result = export_model(fresh_run, quantize="qat", prune=0.5, accuracy_budget=100.0, **FAST)
    report = result.report
    optimization = report["optimization"]
    assert optimization["bridge_max_abs_diff"] <= 1e-5
    assert optimization["pruning"]["pruned_layers"] == 5
    assert optimization["pruning"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert optimization["qat"]["scheme"] == "Default8BitPrunePreserveQuantizeScheme"
    assert report["io"] == {"input": "int8", "output": "int8"}
    assert report["operators"]["builtin_only"] and "MUL" not in report["operators"]["counts"]
    assert result.artifact.name == "tiny_resnet_qat-int8-pruned50.tflite"
    assert report["accuracy"]["tflite_top1"] > 50.0  # eight fine-tuning steps keep the model useful


def test_pruning_alone_gives_a_float32_model_matching_its_fine_tuned_twin(fresh_run):
    """Pruned weights change the outputs: float32 parity is checked against the fine-tuned model."""
    result = export_model(fresh_run, quantize="none", prune=0.5, accuracy_budget=100.0, **FAST)
    report = result.report
    assert result.artifact.name == "tiny_resnet_float32-pruned50.tflite"
    assert report["optimization"]["pruning"]["achieved_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert report["accuracy"]["max_abs_diff_vs_fine_tuned"] <= 1e-4
    assert report["accuracy"]["max_abs_diff"] > report["accuracy"]["max_abs_diff_vs_fine_tuned"]
    parity = next(c for c in report["checks"] if c["name"] == "float32_parity")
    assert parity["passed"] and "fine-tuned model" in parity["detail"]


def test_layer_tfmot_cannot_quantize_is_named(tmp_path):
    from export_helpers import small_resnet, write_run

    run = write_run(tmp_path / "leaky", small_resnet(activation="leaky_relu"))
    with pytest.raises(UnsupportedOperationError, match=r"layer 'activation(_\d+)?' \(Activation\) with activation 'leaky_relu'"):
        export_model(run, quantize="qat", accuracy_budget=100.0, **FAST)
    assert not (run / "export").exists() or not list((run / "export").glob("*.tflite"))


BRIDGE_SCRIPT = textwrap.dedent("""
    import numpy as np, keras
    from keras import layers
    from keras_resnets.layers.shortcuts import ChannelZeroPad
    from keras_resnets.layers.regularization import StochasticDepth
    from keras_resnets.export.graph import layer_graph
    from keras_resnets.export import bridge

    keras.utils.set_random_seed(1)
    inputs = keras.Input((12, 12, 3))
    x = layers.Conv2D(4, 3, padding="same", kernel_regularizer=keras.regularizers.L2(1e-4))(inputs)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    shortcut = ChannelZeroPad(4)(layers.MaxPooling2D(2)(x))
    y = layers.Conv2D(8, 3, strides=2, padding="same", dilation_rate=1)(x)
    y = StochasticDepth(0.2)(layers.BatchNormalization()(y))
    x = layers.Add()([shortcut, y])
    x = layers.Dropout(0.3)(layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, layers.Dense(5, activation="softmax")(x))
    for layer in model.layers:  # non-trivial BatchNormalization statistics
        if isinstance(layer, layers.BatchNormalization):
            layer.moving_mean.assign(np.random.rand(*layer.moving_mean.shape))
            layer.moving_variance.assign(np.random.rand(*layer.moving_variance.shape) + 0.5)
    images = np.random.rand(8, 12, 12, 3).astype("float32")
    weights = {f"{l.name}/{i}": w for l in model.layers for i, w in enumerate(l.get_weights())}
    twin = bridge.build_tf_keras_model(layer_graph(model), weights)
    assert type(twin).__module__.startswith("tf_keras"), type(twin)
    diff = bridge.check_equal_outputs(twin, images, model.predict(images, verbose=0))
    print("max_abs_diff", diff)
""")


def test_bridge_rebuilds_custom_layers_in_tf_keras_with_equal_outputs():
    proc = subprocess.run([sys.executable, "-c", BRIDGE_SCRIPT], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    diff = float(proc.stdout.split("max_abs_diff")[-1])
    assert diff <= 1e-5
