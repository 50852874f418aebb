"""Export trained models for serving and for the edge: SavedModel, TFLite, QAT and pruning.

The public entry point is :func:`export_model` (also the ``keras-resnets export`` command). It takes
a run directory or a ``.keras`` file, writes the artifact next to a verification report
(``<artifact>.report.json`` / ``.report.md``) and an edge sidecar (``<artifact>.json``: labels,
input size, normalisation, quantization parameters) that the standalone runner in the repository's
top-level ``export/`` folder reads without TensorFlow.

TensorFlow is imported on first use of an attribute, so importing this package stays cheap.
"""
from __future__ import annotations

import importlib

_LAZY = {
    "export_model": "keras_resnets.export.api",
    "ExportResult": "keras_resnets.export.api",
    "QUANTIZE_MODES": "keras_resnets.export.variants",
    "load_source": "keras_resnets.export.source",
    "ExportSource": "keras_resnets.export.source",
}

__all__ = sorted(_LAZY)


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'keras_resnets.export' has no attribute {name!r}")
    from keras_resnets.environment import start_quietly

    start_quietly()
    return getattr(importlib.import_module(_LAZY[name]), name)
