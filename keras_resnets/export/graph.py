"""A Keras 3 functional model as a plain list of layer nodes (class, config, inputs).

Read from ``model.get_config()``, so it sees exactly what serialization sees. Used by the
verification (which BatchNormalization layers can fold into a convolution) and by the tf_keras
bridge (which rebuilds the same graph layer by layer).
"""
from __future__ import annotations

import dataclasses

from keras_resnets.export.errors import UnsupportedOperationError

# Layers whose output a following BatchNormalization can be folded into.
FOLDING_TARGETS = ("Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Dense")


@dataclasses.dataclass
class LayerNode:
    """One layer of the graph: ``inbound`` lists the producing layers' names, in call order."""

    name: str
    class_name: str
    registered_name: str | None
    config: dict
    inbound: list


@dataclasses.dataclass
class LayerGraph:
    """Layers in topological order plus the names of the model's input and output layers."""

    nodes: list
    inputs: list
    outputs: list

    def consumers(self) -> dict:
        """Layer name -> number of layers that read its output (model outputs count as one)."""
        counts = {node.name: 0 for node in self.nodes}
        for node in self.nodes:
            for source in node.inbound:
                counts[source] += 1
        for name in self.outputs:
            counts[name] += 1
        return counts

    def by_name(self) -> dict:
        return {node.name: node for node in self.nodes}


def layer_graph(model) -> LayerGraph:
    """Describe a functional model; nested models and shared layers raise, naming the layer."""
    config = model.get_config()
    if "layers" not in config:
        raise UnsupportedOperationError(f"model {model.name!r} is not a functional model "
                                        f"(class {type(model).__name__}); export needs a functional graph")
    nodes = []
    for layer in config["layers"]:
        name, class_name = layer["name"], layer["class_name"]
        if class_name in ("Functional", "Sequential", "Model"):
            raise UnsupportedOperationError(f"layer {name!r} is a nested {class_name} model; "
                                            "flatten it into one functional graph before exporting")
        calls = layer.get("inbound_nodes") or []
        if len(calls) > 1:
            raise UnsupportedOperationError(f"layer {name!r} ({class_name}) is called {len(calls)} times; "
                                            "shared layers are not supported")
        inbound = _history_names(calls[0]) if calls else []
        nodes.append(LayerNode(name=name, class_name=class_name, registered_name=layer.get("registered_name"),
                               config=layer["config"], inbound=inbound))
    return LayerGraph(nodes=nodes, inputs=[_endpoint(e) for e in _as_list(config["input_layers"])],
                      outputs=[_endpoint(e) for e in _as_list(config["output_layers"])])


def _as_list(endpoints):
    # a single endpoint is stored as [name, node, tensor]; several as a list of those
    return [endpoints] if endpoints and isinstance(endpoints[0], str) else list(endpoints)


def _endpoint(entry) -> str:
    return entry[0]


def _history_names(call) -> list:
    """Names of the layers feeding one call, in argument order (lists for Add/Concatenate)."""
    names = []

    def visit(value):
        if isinstance(value, dict):
            if value.get("class_name") == "__keras_tensor__":
                names.append(value["config"]["keras_history"][0])
            else:
                for item in value.values():
                    visit(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item)

    visit(call.get("args", []))
    visit(call.get("kwargs", {}))
    return names


def foldable_batchnorms(graph: LayerGraph) -> tuple:
    """Split BatchNormalization layers into (foldable, unfoldable) name lists.

    A BatchNormalization folds into the preceding layer when that layer is a convolution or Dense
    with a linear activation whose output feeds nothing else.
    """
    nodes, consumers = graph.by_name(), graph.consumers()
    foldable, unfoldable = [], []
    for node in graph.nodes:
        if node.class_name != "BatchNormalization":
            continue
        source = nodes[node.inbound[0]] if len(node.inbound) == 1 else None
        ok = (source is not None and source.class_name in FOLDING_TARGETS
              and source.config.get("activation", "linear") == "linear" and consumers[source.name] == 1)
        (foldable if ok else unfoldable).append(node.name)
    return foldable, unfoldable


def expected_elementwise_ops(graph: LayerGraph, preprocessing: bool) -> int:
    """Upper bound on MUL/ADD/SUB ops a correct conversion keeps (residual adds, gates, unfoldable BN)."""
    count = 2 if preprocessing else 0
    _, unfoldable = foldable_batchnorms(graph)
    count += 2 * len(unfoldable)
    for node in graph.nodes:
        if node.class_name in ("Add", "Multiply", "Subtract", "Average"):
            count += max(1, len(node.inbound) - 1) + (1 if node.class_name == "Average" else 0)
        elif node.class_name in ("Rescaling", "Normalization"):
            count += 2
    return count


def dilated_convolutions(graph: LayerGraph) -> list:
    """Names of convolution layers with a dilation rate above 1."""
    return [n.name for n in graph.nodes
            if n.class_name in FOLDING_TARGETS[:3] and max(_as_tuple(n.config.get("dilation_rate", 1))) > 1]


def _as_tuple(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)
