"""Hyperband vs the full grid on the study's 3 x 4 x 3 space, offline on the embedded digits.

Both searches train the same model on the same data with the same epoch budget per cell: the grid
trains each of the 36 cells for ``--max-epochs`` epochs; Hyperband's largest budget is the same
``--max-epochs``. The script reports how close Hyperband's best validation accuracy comes to the
grid's best, at what share of the grid's epochs and wall time, and the mean wall time per trial,
and writes the figures into docs/tuning.md (between the ``bench_tuner_efficiency`` markers).

    .venv/bin/python benchmarks/bench_tuner_efficiency.py              # ~20 min on 2 busy CPU cores
    .venv/bin/python benchmarks/bench_tuner_efficiency.py --max-epochs 3 --no-docs   # quick look
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DOCS = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "docs", "tuning.md")
START, END = "<!-- bench_tuner_efficiency:start -->", "<!-- bench_tuner_efficiency:end -->"


def run_search(tuner: str, args, datasets, runs_dir: str) -> dict:
    """Run one search; return its best score, epochs trained, trials and wall time."""
    from keras_resnets.tuning import tune

    started = time.perf_counter()
    result = tune(args.model, "digits", space="study", tuner=tuner, max_epochs=args.max_epochs,
                  factor=args.factor, model_kwargs={"depth": args.depth}, datasets=datasets,
                  image_size=(args.image_size, args.image_size), validation_split=args.validation_split,
                  runs_dir=runs_dir, run_name=tuner, seed=args.seed)
    seconds = time.perf_counter() - started
    return {
        "best": result.best["score"],
        "best_values": result.best["values"],
        "epochs": sum(t["epochs"] for t in result.trials),
        "trials": len(result.trials),
        "seconds": seconds,
        "table": result.paths["results.md"],
    }


def format_figures(args, grid: dict, hyperband: dict, num_validation: int) -> str:
    """The Markdown block written into docs/tuning.md."""
    gap = 100 * (grid["best"] - hyperband["best"])
    share = hyperband["epochs"] / grid["epochs"]
    values = ", ".join(f"{k}={v}" for k, v in hyperband["best_values"].items())
    grid_values = ", ".join(f"{k}={v}" for k, v in grid["best_values"].items())
    return "\n".join([
        f"Setting: `{args.model}` with depth {args.depth} on the embedded digits at {args.image_size}x{args.image_size} "
        f"({num_validation} validation images), the study space (36 cells), {args.max_epochs} epochs per grid cell "
        f"and as Hyperband's largest budget (factor {args.factor}), seed {args.seed}; "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), TensorFlow, no XLA.",
        "",
        "| search | trials | epochs trained | wall time | best val accuracy | best cell |",
        "|---|---|---|---|---|---|",
        f"| grid | {grid['trials']} | {grid['epochs']} | {grid['seconds']:.0f} s | {100 * grid['best']:.2f} % | {grid_values} |",
        f"| Hyperband | {hyperband['trials']} | {hyperband['epochs']} | {hyperband['seconds']:.0f} s | "
        f"{100 * hyperband['best']:.2f} % | {values} |",
        "",
        f"Hyperband's best is {abs(gap):.2f} points {'below' if gap >= 0 else 'above'} the grid's best "
        f"(goal: within 0.5) at {share:.0%} of the grid's "
        f"epochs (goal: at most 33 %) and {hyperband['seconds'] / grid['seconds']:.0%} of its wall time; "
        f"mean wall time per trial: grid {grid['seconds'] / grid['trials']:.1f} s, Hyperband "
        f"{hyperband['seconds'] / hyperband['trials']:.1f} s. "
        f"Measured {time.strftime('%Y-%m-%d')} with `benchmarks/bench_tuner_efficiency.py`.",
    ])


def write_docs(block: str, path: str = DOCS) -> None:
    """Replace the text between the markers in docs/tuning.md with ``block``."""
    with open(path) as f:
        text = f.read()
    if START not in text or END not in text:
        raise SystemExit(f"{path} has no {START} ... {END} markers")
    text = re.sub(re.escape(START) + r".*?" + re.escape(END), lambda _: f"{START}\n{block}\n{END}", text, flags=re.S)
    with open(path, "w") as f:
        f.write(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cifar_resnet20")
    parser.add_argument("--depth", type=int, default=8, help="CIFAR ResNet depth 6n+2 (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=8, help="digits are 8x8 natively (default: %(default)s)")
    parser.add_argument("--validation-split", type=float, default=0.3,
                        help="a larger validation split than training's 0.1 makes one image 0.23 points, not 0.7")
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--factor", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs-dir", help="keep the searches here (default: a temporary folder)")
    parser.add_argument("--no-docs", action="store_true", help="print the figures only, do not edit docs/tuning.md")
    args = parser.parse_args(argv)

    from keras_resnets.data import load_dataset

    datasets = load_dataset("digits", image_size=(args.image_size, args.image_size),
                            validation_split=args.validation_split, seed=args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = args.runs_dir or scratch
        print(f"[1/2] grid: 36 cells x {args.max_epochs} epochs", flush=True)
        grid = run_search("grid", args, datasets, runs_dir)
        print(f"[2/2] Hyperband: largest budget {args.max_epochs} epochs, factor {args.factor}", flush=True)
        hyperband = run_search("hyperband", args, datasets, runs_dir)
        for name, result in (("grid", grid), ("Hyperband", hyperband)):
            print(f"\n{name}:\n" + open(result["table"]).read())
    block = format_figures(args, grid, hyperband, datasets.info.num_validation)
    print(block)
    if not args.no_docs:
        write_docs(block)
        print(f"written into {os.path.normpath(DOCS)}")
    met = grid["best"] - hyperband["best"] <= 0.005 and hyperband["epochs"] <= grid["epochs"] / 3
    print(f"goal (within 0.5 point at <= 1/3 of the epochs): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
