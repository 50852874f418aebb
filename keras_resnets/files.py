"""Files written whole or not at all: a temporary file next to the target, then a rename.

Plain Python (no Keras, no numpy import), shared by the run directory (``keras_resnets.runs``), the
training callbacks and artifacts, the tuner's report and the export reports.
"""
from __future__ import annotations

import json
import os
import shutil


class RunWriteError(OSError):
    """An artifact of the run could not be written (disk full, permissions); earlier files are intact."""

    def __init__(self, message: str, code: int | None = None):
        super().__init__(message)
        self.errno = code


def write_json(path, data: dict) -> None:
    """Write ``data`` as indented JSON atomically (a killed or failed writer leaves the old file).

    Raises:
        RunWriteError: the file cannot be written (disk full, permissions, missing folder).
    """
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=False, default=_jsonable)
            f.write("\n")

    atomic_write(str(path), write)


def atomic_write(path: str, write_to) -> None:
    """Call ``write_to(tmp)`` on a temporary path next to ``path``, then rename it onto ``path``.

    The temporary name keeps the file's suffixes (``.keras``, ``.weights.h5``: Keras checks them).

    Raises:
        RunWriteError: writing failed; ``path`` keeps its previous content and the temp file is removed.
    """
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f".tmp-{os.getpid()}-{name}")
    try:
        write_to(tmp)
        os.replace(tmp, path)
    except OSError as err:
        remove_quietly(tmp)
        raise RunWriteError(f"cannot write {path}: {err.strerror or err}; the previous version (if any) "
                                f"is intact", err.errno) from None
    except BaseException:
        remove_quietly(tmp)
        raise


def remove_quietly(path: str) -> None:
    try:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            os.remove(path)
    except OSError:
        pass


def _jsonable(value):
    """numpy scalars and arrays as numbers and lists; anything else as its text (paths, ...)."""
    if type(value).__module__ == "numpy":
        return value.tolist()
    return str(value)
