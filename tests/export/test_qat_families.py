"""QAT (and pruning + QAT) through the tf_keras bridge on real registry models, one tiny model per family.

Each family is built small with its builder's keywords, given non-trivial BatchNormalization
weights and statistics, saved as a digits run and exported with ``quantize="qat"``: the bridge must
reproduce the Keras outputs, tfmot must quantize every layer, and the full-integer artifact must
pass verification with builtin operators only and no BatchNormalization left behind a convolution.
"""
from __future__ import annotations

import pytest

from export_helpers import INPUT_SHAPE, write_run
from keras_resnets.export import export_model
from keras_resnets.export.graph import foldable_batchnorms, layer_graph
from keras_resnets.export.optimize import FineTuneOptions
from tests.models.helpers import randomise_statistics

pytestmark = pytest.mark.tf_only

QUICK = FineTuneOptions(epochs=1, max_images=128, batch_size=32)
FAST = {"eval_samples": 64, "calibration_samples": 32, "benchmark_runs": 5, "accuracy_budget": 100.0,
        "fine_tune": QUICK}

# (registry name, builder keywords that make it tiny, prune sparsity, layer classes the family must contain,
#  BatchNormalization layers that follow no convolution: pre-activation units and DenseNet layers).
# One model per family of the registry: ResNet-18 and ResNet-50 are both the v1 ``resnet`` family and
# give the bridge the same layer classes, so the bottleneck one stands for both. One unit per stage
# (stage 2's first unit has the projection shortcut; v2's pre-activations follow a pooling and an Add)
# and DenseNet-BC at depth 10 (one layer per dense block) keep every layer class of the family.
FAMILIES = [
    pytest.param("resnet50", {"stage_depths": (1, 1), "stage_widths": (4, 8), "stem_width": 8}, None,
                 {"ZeroPadding2D", "MaxPooling2D", "Add"}, 0, id="resnet_v1_bottleneck"),
    pytest.param("resnet18_v2", {"stage_depths": (1, 1), "stage_widths": (8, 16), "stem_width": 8}, None,
                 {"ZeroPadding2D", "MaxPooling2D", "Add"}, 3, id="resnet_v2_imagenet"),
    pytest.param("cifar_resnet20", {"depth": 8, "stage_widths": (4, 8, 16), "stem_width": 4}, None,
                 {"ChannelZeroPad", "MaxPooling2D", "Add"}, 0, id="cifar_v1_option_a"),
    pytest.param("preact_resnet110", {"depth": 8, "stage_widths": (4, 8, 16), "stem_width": 4}, 0.5,
                 {"Add"}, 4, id="preact_v2"),
    pytest.param("cifar_densenet_bc100", {"depth": 10, "growth_rate": 4}, None,
                 {"Concatenate", "AveragePooling2D"}, 6, id="densenet_bc"),
]


@pytest.fixture(scope="module")
def digits_batch():
    """64 normalised digits training images at the run's input shape."""
    from keras_resnets.data import load_dataset

    data = load_dataset("digits", batch_size=64, image_size=INPUT_SHAPE[:2], channels=INPUT_SHAPE[2])
    return next(iter(data.train(1)))[0].numpy()


def _tiny_model(name: str, kwargs: dict, images):
    """The registry model with random BatchNormalization scales/offsets and the statistics of ``images``.

    The moving statistics are those of real activations (not the initial 0/1), so the bridge's
    equality check covers all four BatchNormalization weights; no training step is needed.
    """
    import keras

    import keras_resnets

    keras.utils.set_random_seed(0)
    model = keras_resnets.create_model(name, input_shape=INPUT_SHAPE, classes=10, **kwargs)
    randomise_statistics(model)  # scales and offsets; the moving statistics are replaced below
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # one forward pass in training mode sets the moving statistics
    model(images, training=True)
    for layer, momentum in zip(norms, momenta):
        layer.momentum = momentum
    return model


@pytest.mark.parametrize("name, kwargs, prune, family_layers, unfoldable_bn", FAMILIES)
def test_qat_exports_registry_family(tmp_path, digits_batch, name, kwargs, prune, family_layers, unfoldable_bn):
    model = _tiny_model(name, kwargs, digits_batch)
    graph = layer_graph(model)
    assert family_layers <= {node.class_name for node in graph.nodes}
    assert len(foldable_batchnorms(graph)[1]) == unfoldable_bn
    run = write_run(tmp_path / "run", model, model_name=name)

    result = export_model(run, quantize="qat", prune=prune, **FAST)

    report, optimization = result.report, result.report["optimization"]
    assert optimization["bridge_max_abs_diff"] <= 1e-5
    if prune:
        prunable = [n for n in graph.nodes if n.class_name in ("Conv2D", "Dense")]
        assert optimization["pruning"]["pruned_layers"] == len(prunable)
        assert optimization["pruning"]["achieved_sparsity"] == pytest.approx(prune, abs=0.02)
        assert optimization["qat"]["scheme"] == "Default8BitPrunePreserveQuantizeScheme"
    else:
        assert "pruning" not in optimization
        assert optimization["qat"]["scheme"] == "Default8BitQuantizeScheme"
    assert report["precision"] == "int8" and report["io"] == {"input": "int8", "output": "int8"}
    assert all(check["passed"] for check in report["checks"]), report["checks"]
    operators = report["operators"]
    assert operators["builtin_only"]
    # Every BatchNormalization after a convolution is folded; a MUL may only remain for one that follows
    # no convolution: none at all in the post-activation v1 families.
    assert operators["counts"].get("MUL", 0) <= unfoldable_bn
    suffix = f"-pruned{round(100 * prune)}" if prune else ""
    assert result.artifact.name == f"{name}_qat-int8{suffix}.tflite" and result.artifact.is_file()
    assert result.report_json.is_file() and result.report_md.is_file()
