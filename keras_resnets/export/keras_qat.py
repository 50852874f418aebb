"""Quantization-aware training of Keras 3 models, without the tf_keras bridge.

:func:`quantization_aware_model` rewrites a functional Keras 3 model: every BatchNormalization that
follows a ``Conv2D``/``Dense`` (linear activation, single consumer) is folded into that layer's
kernel and bias and replaced by a ``FoldedBatchNormalization`` (the identity); every ``Conv2D``/``Dense`` becomes a
:class:`~keras_resnets.layers.quantization.QuantizedConv2D` / ``QuantizedDense`` (fake-quantized
kernel; fake-quantized input unless it comes from an activation or the model input) and every
``Activation`` a ``QuantizedActivation`` (fake-quantized output). The rest of the graph is cloned
as it is. The model trains under any backend.

:func:`keras_qat_and_convert` fine-tunes it (TensorFlow backend: the fake-quantization ops are
``tf.quantization.fake_quant_*``) and converts it to full int8: the converter takes weight and input
ranges from the fake-quantization ops and calibrates the remaining tensors (residual adds, the
output) on the representative set.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from keras_resnets.export.errors import ExportError
from keras_resnets.export.graph import foldable_batchnorms, layer_graph

# The int8 artifact's top-1 may differ from the Keras QAT model's on this percentage of the images
# whose top two probabilities are more than QAT_TIE_STEPS int8 output steps (1/256) apart. Closer
# ones are ties the integer arithmetic decides: with every int8 tensor fake-quantized, single
# probabilities still moved by up to 2.4 steps (a one-epoch cifar_resnet20 on digits), so a gap
# between two of them by up to about 5.
QAT_PARITY_POINTS = 0.5
QAT_TIE_STEPS = 5


def quantization_aware_model(model, momentum: float = 0.99):
    """The QAT twin of ``model``: BatchNormalization folded, Conv2D/Dense fake-quantized.

    Args:
        model: a functional Keras 3 model.
        momentum: moving-average momentum of the activation ranges.

    Returns:
        ``(qat_model, info)``: ``info`` counts the quantized layers and folded BatchNormalizations.
    """
    import keras

    from keras_resnets.layers.quantization import (FoldedBatchNormalization, QuantizedActivation, QuantizedConv2D,
                                                   QuantizedDense)

    graph = layer_graph(model)
    nodes = graph.by_name()
    foldable, _ = foldable_batchnorms(graph)
    quantizable = {"Conv2D": QuantizedConv2D, "Dense": QuantizedDense}
    # producer layer name -> the BatchNormalization folded into it
    folded = {nodes[bn].inbound[0]: bn for bn in foldable if nodes[nodes[bn].inbound[0]].class_name in quantizable}
    folded_norms = set(folded.values())
    # tensors already quantized once for all their consumers: activation outputs and the model input
    # (the converter's input type quantizes it)
    quantized_outputs = {n.name for n in graph.nodes if n.class_name == "Activation"} | set(graph.inputs)
    readers = {}  # layer name -> the layers reading its output
    for node in graph.nodes:
        for source in node.inbound:
            readers.setdefault(source, []).append(node.name)

    def quantize_output(layer) -> bool:
        # TFLite stores an int8 tensor after every op; a QuantizedActivation reading the output (after
        # a folded BatchNormalization) stands for it, anything else (a residual Add, the model output,
        # the logits before a softmax) needs the layer to quantize its own output
        if layer.get_config().get("activation", "linear") not in ("linear", "softmax"):
            return False
        after = readers.get(folded.get(layer.name, layer.name), [])
        return not (len(after) == 1 and nodes[after[0]].class_name == "Activation")

    def clone(layer):
        exact = type(layer) in (keras.layers.Conv2D, keras.layers.Dense, keras.layers.Activation)
        if exact and isinstance(layer, keras.layers.Activation):
            return QuantizedActivation.from_config({**layer.get_config(), "momentum": momentum})
        if exact:
            inbound = nodes[layer.name].inbound
            config = {**layer.get_config(), "momentum": momentum,
                      "quantize_input": not all(source in quantized_outputs for source in inbound),
                      "quantize_output": quantize_output(layer)}
            if layer.name in folded:
                config["use_bias"] = True
            return quantizable[type(layer).__name__].from_config(config)
        if layer.name in folded_norms:
            return FoldedBatchNormalization(name=layer.name)
        return layer.__class__.from_config(layer.get_config())

    qat = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        if layer.name in folded_norms or not layer.weights:
            continue
        twin = qat.get_layer(layer.name)
        if isinstance(twin, (QuantizedConv2D, QuantizedDense)):
            kernel, bias = _folded_weights(layer, model.get_layer(folded[layer.name]) if layer.name in folded else None)
            twin.kernel.assign(kernel)
            if bias is not None:
                twin.bias.assign(bias)
        else:
            twin.set_weights(layer.get_weights())
    quantized = sum(isinstance(layer, (QuantizedConv2D, QuantizedDense)) for layer in qat.layers)
    return qat, {"quantized_layers": quantized, "folded_batchnorms": len(folded_norms)}


def _folded_weights(layer, norm) -> tuple:
    """Kernel and bias of ``layer`` with ``norm`` (inference statistics) folded in."""
    kernel = np.asarray(layer.kernel, np.float32)
    bias = np.asarray(layer.bias, np.float32) if layer.use_bias else None
    if norm is None:
        return kernel, bias
    if norm.axis not in (-1, len(norm.input.shape) - 1):
        raise ExportError(f"BatchNormalization {norm.name!r} normalises axis {norm.axis}; folding needs the last axis")
    channels = kernel.shape[-1]
    gamma = np.asarray(norm.gamma, np.float32) if norm.scale else np.ones(channels, np.float32)
    beta = np.asarray(norm.beta, np.float32) if norm.center else np.zeros(channels, np.float32)
    mean, variance = np.asarray(norm.moving_mean, np.float32), np.asarray(norm.moving_variance, np.float32)
    factor = gamma / np.sqrt(variance + norm.epsilon)
    bias = np.zeros(channels, np.float32) if bias is None else bias
    return kernel * factor, beta + (bias - mean) * factor


def keras_qat_and_convert(source, data, *, io_type: str, batch_size, preprocessing: bool, options,
                          seed: int = 0) -> tuple:
    """Fine-tune the Keras 3 QAT twin of ``source.model`` and convert it to a full-int8 TFLite model.

    Args:
        source: the :class:`~keras_resnets.export.source.ExportSource` (a classifier).
        data: the :class:`~keras_resnets.export.datasets.ExportData`.
        io_type: ``"int8"`` or ``"uint8"`` model input/output.
        batch_size: static batch size of the artifact or ``None``.
        preprocessing: the artifact takes raw pixels and normalises them itself.
        options: :class:`~keras_resnets.export.optimize.FineTuneOptions`.
        seed: seed of the fine-tuning's shuffling.

    Returns:
        ``(flatbuffer, info for the report, the QAT model's probabilities on data.eval_images)``.
    """
    import keras

    from keras_resnets.export import convert

    if not source.task.keras_qat:
        raise ExportError(f"--qat-path keras fine-tunes classifiers; this model's task is {source.task.name!r} "
                          "(use --qat-path bridge)")
    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"--qat-path keras converts under the TensorFlow backend; KERAS_BACKEND is "
                          f"{keras.backend.backend()!r}")
    keras.utils.set_random_seed(seed)
    qat, info = quantization_aware_model(source.model)
    from_logits = source.classifier_activation is None
    qat.compile(optimizer=keras.optimizers.Adam(options.learning_rate),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits), metrics=["accuracy"])
    count = min(options.max_images, len(data.train_labels))
    started = time.perf_counter()
    qat.fit(data.train_images[:count], data.train_labels[:count], batch_size=options.batch_size,
            epochs=options.epochs, shuffle=True, verbose=1 if sys.stdout.isatty() else 2)
    seconds = time.perf_counter() - started
    outputs = np.asarray(qat.predict(data.eval_images, verbose=0, batch_size=64))
    probabilities = _softmax(outputs) if from_logits else outputs
    top1 = 100.0 * float(np.mean(np.argmax(probabilities, -1) == np.asarray(data.eval_labels)))
    with tempfile.TemporaryDirectory(prefix="keras-resnets-qat-") as tmp:
        path = Path(tmp) / "saved_model"
        convert.write_saved_model(qat, path, input_shape=source.input_shape, batch_size=batch_size,
                                  add_softmax=from_logits, mean=source.mean if preprocessing else None,
                                  std=source.std if preprocessing else None)
        flatbuffer = convert.convert_saved_model(path, "int8", representative=data.model_inputs(
            data.calibration, preprocessing), io_type=io_type)
    info.update({"path": "keras", "fine_tuned_keras": top1, "fine_tuned_keras_metric": "keras_qat_top1",
                 "fine_tune_seconds": seconds, "qat": {"scheme": "keras_resnets.layers.quantization: "
                                                       "per-channel symmetric weights, per-tensor activations, "
                                                       "BatchNormalization folded"},
                 "fine_tune": {"epochs": options.epochs, "learning_rate": options.learning_rate,
                               "batch_size": options.batch_size, "images": count, "from_logits": from_logits}})
    return flatbuffer, info, probabilities


def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)
