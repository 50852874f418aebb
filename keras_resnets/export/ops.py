"""What delegates and accelerators will make of an artifact: its ops, Flex ops, GPU and integer-only checks.

:func:`delegate_report` reads a TFLite flatbuffer and returns the report's ``delegates`` section:

- the op list (name -> count), and the Flex (SELECT_TF_OPS) ops, which need the TensorFlow
  runtime linked into the app and run on no delegate;
- TensorFlow's own GPU-compatibility verdict (``tf.lite.experimental.Analyzer`` with
  ``gpu_compatibility=True``) and the ops it flags;
- for full-integer artifacts, whether every op is a builtin computing on integer tensors only
  with static shapes: what Edge-TPU-style accelerators (and NNAPI's integer drivers) need to
  take the whole graph.

:func:`onnx_op_report` is the same section for an ONNX file: its op list, the opsets it imports,
ops of other domains (which only a runtime that registers them runs) and ops the ONNX standard
does not define (a converter that could not express a TensorFlow op leaves it in under its own
name; no runtime loads such a file).
"""
from __future__ import annotations

import collections
import contextlib
import io
import re

import numpy as np

INTEGER_DTYPES = (np.int8, np.uint8, np.int16, np.int32, np.int64)
_OP_LINE = re.compile(r"Op#(\d+)\s+([A-Z0-9_]+)\(")


def delegate_report(flatbuffer: bytes, *, full_integer: bool) -> dict:
    """The ``delegates`` report section of ``flatbuffer`` (see the module docstring)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interpreter = Interpreter(model_content=bytes(flatbuffer),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ops = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    counts = collections.Counter(op["op_name"] for op in ops)
    flex = sorted(name for name in counts if name.startswith("Flex"))
    custom = sorted(name for name in counts if name in ("CUSTOM", "DELEGATE"))
    gpu = gpu_compatibility(flatbuffer)
    # TensorFlow 2.21's Analyzer calls a graph with a Flex op GPU-compatible; no delegate runs one
    extra = [{"index": i, "op": op["op_name"], "warning": "Flex/custom op: no delegate runs it (not flagged by "
              "the Analyzer)"} for i, op in enumerate(ops) if op["op_name"] in flex + custom]
    gpu = {"compatible": gpu["compatible"] and not extra, "analyzer_compatible": gpu["compatible"],
           "flagged": gpu["flagged"] + extra}
    section = {"ops": dict(sorted(counts.items())), "op_count": int(sum(counts.values())), "flex_ops": flex,
               "custom_ops": custom, "gpu": gpu}
    if full_integer:
        float_ops = sorted({op["op_name"] for op in ops if any(
            i >= 0 and tensors[i]["dtype"] not in INTEGER_DTYPES for i in [*op["inputs"], *op["outputs"]])})
        dynamic = sorted(t["name"] for t in tensors.values() if -1 in list(t.get("shape_signature", [])))
        section["integer_only"] = {"passed": not float_ops and not flex and not custom and not dynamic,
                                   "float_ops": float_ops, "dynamic_shape_tensors": dynamic[:10],
                                   "dynamic_shape_count": len(dynamic)}
    return section


_ONNX_STANDARD_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")


def onnx_op_report(path) -> dict:
    """The ``operators`` report section of the ONNX file at ``path`` (see the module docstring)."""
    import onnx
    import onnx.defs

    graph = onnx.load(str(path), load_external_data=False).graph
    nodes = [(node.domain or "", node.op_type) for node in graph.node]
    counts = collections.Counter(op if domain in _ONNX_STANDARD_DOMAINS else f"{domain}.{op}" for domain, op in nodes)
    return {"ops": dict(sorted(counts.items())), "op_count": len(nodes),
            "custom_ops": sorted({f"{d}.{op}" for d, op in nodes if d not in _ONNX_STANDARD_DOMAINS}),
            "undefined_ops": sorted({op for d, op in nodes
                                     if d in _ONNX_STANDARD_DOMAINS and not onnx.defs.has(op, d)})}


def onnx_markdown_lines(section: dict | None) -> list:
    """The ONNX report's ``## Ops`` lines."""
    if not section:
        return []
    return ["", "## Ops", "",
            f"- ops ({section['op_count']}): " + ", ".join(f"{name} x{n}" for name, n in section["ops"].items()),
            f"- ops outside the ONNX standard domains: {', '.join(section['custom_ops']) or 'none'}",
            f"- ops the ONNX standard does not define: {', '.join(section['undefined_ops']) or 'none'}"]


def gpu_compatibility(flatbuffer: bytes) -> dict:
    """``tf.lite.experimental.Analyzer``'s GPU verdict: ``{"compatible": bool, "flagged": [{op, index, warning}]}``."""
    import tensorflow as tf

    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        tf.lite.experimental.Analyzer.analyze(model_content=bytes(flatbuffer), gpu_compatibility=True)
    flagged, current = [], None
    for line in text.getvalue().splitlines():
        match = _OP_LINE.search(line)
        if match:
            current = (int(match.group(1)), match.group(2))
        if "GPU COMPATIBILITY WARNING" in line:
            warning = line.split("GPU COMPATIBILITY WARNING:", 1)[-1].strip()
            flagged.append({"index": current[0] if current else None, "op": current[1] if current else None,
                            "warning": warning})
    compatible = "looks compatible with GPU delegate" in text.getvalue()
    return {"compatible": compatible and not flagged, "flagged": flagged}


def markdown_lines(section: dict | None) -> list:
    """The report's ``## Delegates and ops`` lines."""
    if not section:
        return []
    gpu = section["gpu"]
    flagged = ", ".join(f"{f['op']} (op #{f['index']}: {f['warning']})" for f in gpu["flagged"]) or "none"
    lines = ["", "## Delegates and ops", "",
             f"- ops ({section['op_count']}): " + ", ".join(f"{name} x{n}" for name, n in section["ops"].items()),
             f"- Flex (SELECT_TF_OPS) ops: {', '.join(section['flex_ops']) or 'none'}",
             f"- GPU delegate (TensorFlow Analyzer): {'compatible' if gpu['compatible'] else 'NOT compatible'}; "
             f"flagged ops: {flagged}"]
    integer = section.get("integer_only")
    if integer is not None:
        why = []
        if integer["float_ops"]:
            why.append(f"ops on float tensors: {', '.join(integer['float_ops'])}")
        if integer["dynamic_shape_count"]:
            why.append(f"{integer['dynamic_shape_count']} tensor(s) with a dynamic dimension")
        lines.append(f"- integer-only builtins with static shapes (Edge-TPU-style accelerators): "
                     f"{'yes' if integer['passed'] else 'no: ' + '; '.join(why)}")
    return lines
