"""int8 accuracy per variant of the study: float32 vs int8 vs selective int8, size and latency, one run.

For ``cifar_resnet20`` trained briefly on the embedded digits (``keras_resnets.train``, recipe
``digits_demo``) with each activation of the study (relu, leaky_relu, tanh, sigmoid, gelu) and with
``merge="add_squared_shortcut"`` (tanh: with relu it overflows) and ``shortcut="exclusive_gating"``
(relu), every variant is
exported through ``keras_resnets.export.export_model`` (the same verification as the CLI) as:

- float32, full int8 (with the per-layer sensitivity report), selective int8
  (``keep_float="auto"``: the most harmful layers in float until the budget is met), and
- ``quantize="auto"`` (the smallest artifact within the 1-point budget),
- for ``--qat-variants`` (relu, leaky_relu): quantization-aware fine-tuning (2 epochs, Adam 1e-4)
  through the Keras 3 QAT layers and through the tf_keras bridge, same model and data,

and the table prints Keras / float32 / int8 / selective top-1, the int8 prediction agreement,
sizes and batch-1 latency medians (with their p10-p90 spread). Latencies of the three artifacts of a
variant are measured back to back after all three are converted, in alternating rounds.

Run: ``.venv/bin/python benchmarks/bench_int8.py [--runs-dir runs/bench_int8] [--epochs 6]``;
trained runs are reused when present (``--retrain`` to train again); writes
``benchmarks/results/bench_int8.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

# name -> (activation, model keywords, training overrides)
VARIANTS = {
    "relu": ("relu", {}, {}),
    "leaky_relu": ("leaky_relu", {}, {}),
    "tanh": ("tanh", {}, {}),
    "sigmoid": ("sigmoid", {}, {}),
    "gelu": ("gelu", {}, {}),
    # relu(F(x) + x²) overflows within the first batches (x² compounds over 9 units, at lr 0.05 and
    # 0.01 alike); with tanh the squared shortcut stays bounded
    "add_squared_shortcut": ("tanh", {"merge": "add_squared_shortcut"}, {}),
    "exclusive_gating": ("relu", {"shortcut": "exclusive_gating"}, {}),
}
MODEL = "cifar_resnet20"
RESULTS = Path(__file__).resolve().parent / "results" / "bench_int8.json"


def train_variant(name: str, runs_dir: Path, epochs: int, retrain: bool) -> Path:
    """Train (or reuse) one variant's run directory."""
    from keras_resnets.training import train

    run_dir = runs_dir / name
    if run_dir.is_dir() and (run_dir / "best.keras").is_file() and not retrain:
        return run_dir
    if run_dir.exists():
        shutil.rmtree(run_dir)
    activation, kwargs, overrides = VARIANTS[name]
    started = time.perf_counter()
    result = train(MODEL, "digits", recipe="digits_demo", epochs=epochs, activation=activation,
                   model_kwargs=kwargs or None, runs_dir=str(runs_dir), run_name=name, seed=0, verbose=2,
                   **overrides)
    print(f"trained {name}: test accuracy {result.metrics['test_accuracy']:.4f} "
          f"in {time.perf_counter() - started:.0f} s", flush=True)
    return run_dir


def _export(run: Path, out: Path, **kwargs) -> dict:
    """One export's report, or ``{"error": message}`` when it is refused or fails verification."""
    from keras_resnets.export import export_model
    from keras_resnets.export.errors import ExportError

    try:
        result = export_model(run, output_dir=out, force=True, **kwargs)
    except ExportError as err:
        return {"error": str(err)}
    return {**result.report, "_path": result.artifact}


def _top1(report: dict):
    return None if "error" in report else report["accuracy"]["tflite_top1"]


def measure_variant(name: str, run: Path, threads: int, runs: int, qat: bool) -> dict:
    """Export float32, int8 (no budget: measured, not judged), selective int8 and auto; time the first three."""
    from keras_resnets.export.optimize import FineTuneOptions

    out = run / "export-bench"
    common = {"num_threads": threads, "benchmark_runs": runs}
    float32 = _export(run, out, quantize="none", **common)
    int8 = _export(run, out, quantize="int8", accuracy_budget=100.0, **common)
    selective = _export(run, out, quantize="int8", keep_float="auto", **common)
    auto = _export(run, out / "auto", quantize="auto", **common)
    row = {"variant": name, "keras_top1": float32["accuracy"]["keras_top1"], "samples": float32["accuracy"]["samples"],
           "float32_top1": _top1(float32), "int8_top1": _top1(int8), "selective_top1": _top1(selective),
           "int8_agreement": int8["accuracy"]["prediction_agreement"],
           "int8_drop": int8["accuracy"]["drop_points"],
           "selective_kept": None if "error" in selective else len(selective["keep_float"]["layers"]),
           "selective_error": selective.get("error"),
           "most_harmful": [(r["layer"], r["op"], round(r["rmse_over_scale"], 2))
                            for r in int8["sensitivity"]["layers"][:3]],
           "size_kib": {k: None if "error" in r else r["size_bytes"] / 1024
                        for k, r in (("float32", float32), ("int8", int8), ("selective", selective))},
           "auto": None if "error" in auto else {"precision": auto["precision"], "size_kib": auto["size_bytes"] / 1024,
                                                "drop": auto["accuracy"]["drop_points"]},
           "auto_error": auto.get("error")}
    artifacts = {k: r["_path"] for k, r in (("float32", float32), ("int8", int8), ("selective", selective))
                 if "error" not in r}
    row["latency"] = _interleaved_latency(artifacts, threads, runs)
    if qat:
        for path in ("keras", "bridge"):
            started = time.perf_counter()
            report = _export(run, out / f"qat-{path}", quantize="qat", accuracy_budget=100.0,
                             fine_tune=FineTuneOptions(qat_path=path), **common)
            row[f"qat_{path}"] = {"error": report["error"]} if "error" in report else {
                "keras_qat_top1": report["optimization"]["fine_tuned_keras"], "tflite_top1": _top1(report),
                "seconds": time.perf_counter() - started, "operators": report["operators"]["counts"]}
    print(f"measured {name}", flush=True)
    return row


def _interleaved_latency(artifacts: dict, threads: int, runs: int, rounds: int = 3) -> dict:
    """Median over alternating rounds of each artifact's median, and of its p10-p90 spread."""
    from keras_resnets.export.verify import TFLiteRunner

    runners = {k: TFLiteRunner(path, num_threads=threads) for k, path in artifacts.items()}
    rows = {k: [] for k in runners}
    for _ in range(rounds):
        for k, runner in runners.items():
            rows[k].append(runner.latency(runs=runs))
    return {k: {"median_ms": float(np.median([r["median_ms"] for r in v])),
                "spread_ms": float(np.median([r["spread_ms"] for r in v]))} for k, v in rows.items()}


def _fmt(value, digits=2):
    return "-" if value is None else f"{value:.{digits}f}"


def print_table(rows: list) -> None:
    """One line per variant: top-1, agreement, sizes, latencies, auto's choice, QAT."""
    print("| variant | Keras | float32 | int8 | int8 agreement | selective int8 (layers in float) | "
          "size KiB f32/int8/sel | latency ms f32/int8/sel | auto | QAT Keras 3 / bridge (TFLite top-1) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        lat = r["latency"]
        sizes = "/".join(_fmt(r["size_kib"][k], 0) for k in ("float32", "int8", "selective"))
        times = "/".join(_fmt(lat.get(k, {}).get("median_ms"), 3) for k in ("float32", "int8", "selective"))
        auto = "-" if r["auto"] is None else f"{r['auto']['precision']} ({r['auto']['size_kib']:.0f} KiB)"
        qat = " / ".join("n/a" if f"qat_{p}" not in r else ("refused" if "error" in r[f"qat_{p}"] else
                         _fmt(r[f"qat_{p}"]["tflite_top1"])) for p in ("keras", "bridge"))
        print(f"| {r['variant']} | {r['keras_top1']:.2f} | {_fmt(r['float32_top1'])} | {_fmt(r['int8_top1'])} | "
              f"{r['int8_agreement']:.1f} | {_fmt(r['selective_top1'])} ({_fmt(r['selective_kept'], 0)}) | {sizes} | "
              f"{times} | {auto} | {qat} |")


def _cpu() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", default="runs/bench_int8")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--retrain", action="store_true")
    parser.add_argument("--train-only", action="store_true", help="train the runs and stop")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50, help="timed invokes per latency round")
    parser.add_argument("--qat-variants", default="relu,leaky_relu",
                        help="variants fine-tuned with QAT through both paths, Keras 3 and the tf_keras bridge "
                             "(comma-separated; empty: none)")
    args = parser.parse_args()
    names = [n for n in args.variants.split(",") if n]
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
    runs_dir = Path(args.runs_dir)
    runs = {name: train_variant(name, runs_dir, args.epochs, args.retrain) for name in names}
    if args.train_only:
        return
    qat = set(filter(None, args.qat_variants.split(",")))
    rows = [measure_variant(name, run, args.threads, args.runs, qat=name in qat) for name, run in runs.items()]
    print_table(rows)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"cpu": _cpu(), "threads": args.threads, "epochs": args.epochs,
                                   "machine": "shared 2-core machine, loaded by other work during the run",
                                   "model": MODEL, "dataset": "digits", "rows": rows}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
