"""Errors raised by the export pipeline. All are ``ValueError``s so the CLI prints one line."""
from __future__ import annotations


class ExportError(ValueError):
    """The export cannot proceed with the given input (bad file, bad data, bad option)."""


class UnsupportedOperationError(ExportError):
    """The model contains an operation or layer the target format cannot express."""


class VerificationError(ExportError):
    """The exported artifact was produced but failed a verification check; nothing was written."""
