"""What every results file shares: the machine's name and the atomic write (no Keras, no other experiment module)."""
from __future__ import annotations

import json
import os

from keras_resnets.calibration import cpu_name  # noqa: F401  (the one description of the machine)
from keras_resnets.files import atomic_write


def write_results(results: dict, path: str) -> None:
    """Write ``results`` to ``path`` as JSON, whole or not at all (``keras_resnets.files.atomic_write``);
    NaN is refused, so a results file is valid JSON everywhere."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(results, f, indent=1, allow_nan=False)
            f.write("\n")

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    atomic_write(path, write)
