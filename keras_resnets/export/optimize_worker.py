"""Worker process for quantization-aware training and pruning (tfmot on the tf_keras twin).

Run as ``python -m keras_resnets.export.optimize_worker WORK_DIR``. ``WORK_DIR`` holds
``spec.json`` and ``arrays.npz`` written by :mod:`keras_resnets.export.optimize`; the worker
writes ``model.tflite``, ``fine_tuned_outputs.npy`` + ``result.json``, or ``error.json`` with a one-line message. It is a
separate process because importing tfmot switches ``tf.keras`` to tf_keras process-wide.

Steps: rebuild the graph in tf_keras and copy the weights (:mod:`~keras_resnets.export.bridge`),
prove equal outputs, fine-tune with magnitude pruning (then strip the wrappers) and/or
quantization-aware training, save the variables with the serving signature and convert.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from keras_resnets.export import bridge, convert
from keras_resnets.export.errors import UnsupportedOperationError
from keras_resnets.export.graph import LayerGraph, LayerNode, foldable_batchnorms
from keras_resnets.tasks import get_task

# Activations the default 8-bit QAT scheme can quantize (tfmot Default8BitActivationQuantizeConfig).
QAT_ACTIVATIONS = ("relu", "relu6", "swish", "gelu", "linear", "softmax", "sigmoid", "tanh")
PRUNABLE_LAYERS = ("Conv2D", "DepthwiseConv2D", "Dense")
# Layers whose TFLite int8 kernel requires the output scale to equal the input scale: they keep their
# input's quantization (no output fake-quant of their own), which the converter then propagates.
SAME_SCALE_LAYERS = ("AveragePooling2D",)


def main(argv=None) -> int:
    work_dir = Path((argv or sys.argv[1:])[0])
    try:
        result = optimize(work_dir)
    except ValueError as err:
        (work_dir / "error.json").write_text(json.dumps({"type": type(err).__name__, "message": str(err)}))
        return 3
    (work_dir / "result.json").write_text(json.dumps(result, indent=2))
    return 0


def optimize(work_dir: Path) -> dict:
    """Run the spec in ``work_dir``; returns the result dict and writes ``model.tflite``."""
    spec = json.loads((work_dir / "spec.json").read_text())
    arrays = np.load(work_dir / "arrays.npz")
    graph = LayerGraph(nodes=[LayerNode(**n) for n in spec["graph"]["nodes"]],
                       inputs=spec["graph"]["inputs"], outputs=spec["graph"]["outputs"])
    weights = {key[2:]: arrays[key] for key in arrays.files if key.startswith("w:")}

    import tensorflow as tf

    tf.keras.utils.set_random_seed(int(spec["seed"]))
    classes = bridge.custom_objects()
    model = bridge.build_tf_keras_model(graph, weights, classes)
    result = {"bridge_max_abs_diff": bridge.check_equal_outputs(model, arrays["check_images"],
                                                                arrays["check_reference"])}
    train = (arrays["train_images"], arrays["train_labels"])
    tune = spec["fine_tune"]
    if spec["prune"]:
        model, result["pruning"] = _prune(model, train, tune, float(spec["prune"]))
    if spec["qat"]:
        folded = set(foldable_batchnorms(graph)[0])
        model, result["qat"] = _quantization_aware(model, train, tune, classes, folded,
                                                   prune_preserving=bool(spec["prune"]))
    outputs = model.predict(arrays["eval_images"], verbose=0, batch_size=64)
    if spec["export"]["add_softmax"]:
        outputs = tf.nn.softmax(outputs, axis=-1).numpy()
    np.save(work_dir / "fine_tuned_outputs.npy", outputs)  # what a float32 artifact must reproduce
    task = get_task(tune["task"])
    result["fine_tuned_keras_metric"] = task.agreement_metric
    result["fine_tuned_keras"] = task.score(outputs, arrays["eval_labels"])[task.agreement_metric]

    export = spec["export"]
    saved_model = work_dir / "saved_model"
    preprocessing = export["preprocessing"]
    convert.write_saved_model(model, saved_model, input_shape=tuple(export["input_shape"]),
                              batch_size=export["batch_size"], add_softmax=export["add_softmax"],
                              mean=preprocessing["mean"] if preprocessing else None,
                              std=preprocessing["std"] if preprocessing else None)
    flatbuffer = convert.convert_saved_model(saved_model, export["precision"], io_type=export["io_type"],
                                             representative=arrays["representative"])
    (work_dir / "model.tflite").write_bytes(flatbuffer)
    return result


def _compile_and_fit(model, train, tune, callbacks=()):
    import tf_keras

    ignore_label = get_task(tune["task"]).ignore_label
    loss = tf_keras.losses.SparseCategoricalCrossentropy(from_logits=tune["from_logits"], ignore_class=ignore_label)
    # plain accuracy would count ignored pixels; the loss alone is reported where a label is ignored
    model.compile(optimizer=tf_keras.optimizers.Adam(tune["learning_rate"]), loss=loss,
                  metrics=[] if ignore_label is not None else ["accuracy"])
    history = model.fit(*train, batch_size=tune["batch_size"], epochs=tune["epochs"], verbose=0,
                        callbacks=list(callbacks), shuffle=True)
    return {key: [float(v) for v in values] for key, values in history.history.items()}


def _prune(model, train, tune, target: float):
    """Magnitude-prune every Conv2D/Dense kernel to ``target`` sparsity while fine-tuning, then strip."""
    import tensorflow_model_optimization as tfmot
    import tf_keras

    sparsity = tfmot.sparsity.keras
    steps = tune["epochs"] * math.ceil(len(train[1]) / tune["batch_size"])
    frequency = max(1, steps // 20)
    end_step = max(frequency, (int(0.7 * steps) // frequency) * frequency)
    schedule = sparsity.PolynomialDecay(initial_sparsity=0.0, final_sparsity=target, begin_step=0,
                                        end_step=end_step, frequency=frequency)

    def wrap(layer):
        if type(layer).__name__ in PRUNABLE_LAYERS:
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer

    pruned = tf_keras.models.clone_model(model, clone_function=wrap)
    history = _compile_and_fit(pruned, train, tune, callbacks=[sparsity.UpdatePruningStep()])
    stripped = sparsity.strip_pruning(pruned)
    kernels = [layer.kernel.numpy() for layer in stripped.layers if type(layer).__name__ in PRUNABLE_LAYERS]
    zeros = sum(int(np.sum(k == 0)) for k in kernels)
    total = sum(k.size for k in kernels)
    return stripped, {"target_sparsity": target, "achieved_sparsity": zeros / max(total, 1),
                      "pruned_layers": len(kernels), "steps": steps, "history": history}


def _quantization_aware(model, train, tune, classes: dict, folded: set, prune_preserving: bool):
    """Insert fake-quantization (default 8-bit scheme) and fine-tune; unsupported layers raise by name.

    BatchNormalization layers in ``folded`` follow a convolution and are folded into it by tfmot's
    transforms; the others (pre-activation units) get their output quantized on their own.
    :data:`SAME_SCALE_LAYERS` (DenseNet's transition pooling) pass their input's range through.
    """
    import tensorflow_model_optimization as tfmot
    import tf_keras
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs, default_8bit_quantize_registry)

    quantization = tfmot.quantization.keras
    registry = default_8bit_quantize_registry.Default8BitQuantizeRegistry()
    passthrough = default_8bit_quantize_configs.NoOpQuantizeConfig
    output_only = default_8bit_quantize_configs.Default8BitOutputQuantizeConfig

    def annotate(layer):
        name, kind = layer.name, type(layer).__name__
        if isinstance(layer, tf_keras.layers.InputLayer):
            return layer
        if kind in classes or kind in SAME_SCALE_LAYERS:  # parameter-free: keep the input's range
            return quantization.quantize_annotate_layer(layer, quantize_config=passthrough())
        if isinstance(layer, tf_keras.layers.BatchNormalization):
            config = None if name in folded else output_only()
            return quantization.quantize_annotate_layer(layer, quantize_config=config)
        if not registry.supports(layer):
            raise UnsupportedOperationError(f"tfmot cannot quantize layer {name!r} ({kind}); use --quantize "
                                            "int8 (post-training) for this model")
        activation = getattr(getattr(layer, "activation", None), "__name__", "linear")
        if activation not in QAT_ACTIVATIONS:
            raise UnsupportedOperationError(f"tfmot cannot quantize layer {name!r} ({kind}) with activation "
                                            f"{activation!r}; supported: {', '.join(QAT_ACTIVATIONS)}")
        return quantization.quantize_annotate_layer(layer)

    annotated = tf_keras.models.clone_model(model, clone_function=annotate)
    scheme = (tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme() if prune_preserving
              else quantization.default_8bit.Default8BitQuantizeScheme())
    with quantization.quantize_scope({**classes, "NoOpQuantizeConfig": passthrough,
                                      "Default8BitOutputQuantizeConfig": output_only}):
        quantized = quantization.quantize_apply(annotated, scheme)
    history = _compile_and_fit(quantized, train, tune)
    return quantized, {"scheme": type(scheme).__name__, "history": history}


if __name__ == "__main__":
    sys.exit(main())
