"""Start-up time of what needs no model (goal: under 1 s), against ``python -c "import keras"``.

Each command runs in a fresh process, ``--repeat`` times; the table gives the median wall time and the
peak memory (max RSS) of the process.

    .venv/bin/python benchmarks/bench_startup.py [--repeat 5] [--root DIR]

``--root`` times another checkout of the package (e.g. an older one) with the same interpreter.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

GOAL_SECONDS = 1.0
CLI = "from keras_resnets.cli import main; import sys; sys.exit(main())"
COMMANDS = {
    "keras-resnets --help": [CLI, "--help"],
    "keras-resnets list": [CLI, "list"],
    "keras-resnets info --help": [CLI, "info", "--help"],
    "keras-resnets train --model resnet51 (error)": [CLI, "train", "--model", "resnet51"],
    "import keras_resnets": ["import keras_resnets"],
    "import keras (reference)": ["import keras"],
}


def run_once(code_and_args: list, env: dict, root: str) -> tuple[float, float]:
    """(wall seconds, max RSS in MB) of one fresh ``python -c`` process, run in ``root`` (first on sys.path)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", *code_and_args], env=env, cwd=root,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    args = parser.parse_args()
    args.root = os.path.abspath(args.root)
    env = {**os.environ, "PYTHONPATH": args.root}
    load = os.getloadavg()[0]
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load {load:.1f}, "
          f"Python {platform.python_version()}, {args.repeat} runs each, package from {args.root}\n")
    print("| command | median wall (s) | max RSS (MB) |\n|---|---:|---:|")
    for label, code in COMMANDS.items():
        runs = [run_once(code, env, args.root) for _ in range(args.repeat)]
        wall = statistics.median(r[0] for r in runs)
        rss = statistics.median(r[1] for r in runs)
        flag = "" if label.endswith("(reference)") or wall < GOAL_SECONDS else f" (over the {GOAL_SECONDS:.0f} s goal)"
        print(f"| `{label}` | {wall:.2f}{flag} | {rss:.0f} |")


if __name__ == "__main__":
    main()
