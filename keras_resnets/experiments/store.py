"""What every results file shares: the machine's name and the atomic write (no Keras, no other experiment module)."""
from __future__ import annotations

import json
import os
import platform


def cpu_name() -> str:
    """``<model name> (<n> logical CPUs)`` from /proc/cpuinfo (the platform's name elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} logical CPUs)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} logical CPUs)"


def write_results(results: dict, path: str) -> None:
    """Write ``results`` to ``path`` as JSON through a temporary file and a rename (never half a file)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(results, f, indent=1, allow_nan=False)
        f.write("\n")
    os.replace(tmp, path)
