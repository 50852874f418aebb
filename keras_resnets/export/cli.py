"""``keras-resnets export RUN_DIR|MODEL.keras``: SavedModel or verified TFLite, with a report."""
from __future__ import annotations

from keras_resnets.cli_args import OwnedChoices

_VARIANTS = "keras_resnets.export.variants"  # owns every export choice list (plain Python)


def add_arguments(parser) -> None:
    """Add the export options to ``parser``."""
    parser.add_argument("source", metavar="RUN_DIR|MODEL.keras", help="run directory or .keras file")
    parser.add_argument("--to", default="tflite", choices=OwnedChoices(f"{_VARIANTS}:TARGETS"),
                        metavar="FORMAT", help="artifact format: %(choices)s")
    parser.add_argument("--quantize", default="none", choices=OwnedChoices(f"{_VARIANTS}:QUANTIZE_MODES"),
                        metavar="MODE", help="none (float32), float16, dynamic (int8 weights), int8 (full integer, calibrated), "
                             "qat (quantization-aware fine-tuning), auto (the smallest artifact within the budget)")
    parser.add_argument("--keep-float", default=None, metavar="auto|LAYER,...",
                        help="with --quantize int8: keep these layers (names from the sensitivity report) in float, "
                             "or 'auto': the most harmful ones until the accuracy budget is met")
    parser.add_argument("--optimize-for", default="size", choices=OwnedChoices(f"{_VARIANTS}:OPTIMIZE_FOR"),
                        metavar="GOAL", help="how --quantize auto chooses within the budget: size (default, the same on every "
                             "machine) or host-latency (only where this machine's difference exceeds its spread)")
    parser.add_argument("--prune", type=float, default=None, metavar="SPARSITY",
                        help="magnitude-prune conv/dense kernels to this sparsity while fine-tuning, e.g. 0.5")
    parser.add_argument("--dataset", default=None,
                        help="calibration/evaluation data: a dataset name or an .npz with x_train, y_train, "
                             "x_test, y_test (labels, or masks (n, h, w) for segmentation; default: the run's dataset)")
    parser.add_argument("--output", default=None, help="output folder (default: RUN_DIR/export)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--io-type", default=None, choices=OwnedChoices(f"{_VARIANTS}:INTEGER_IO_TYPES"),
                        metavar="TYPE", help="input/output type of full-integer models: %(choices)s (default: uint8 "
                             "with --include-preprocessing, the pixels image clients such as MediaPipe feed; else int8)")
    parser.add_argument("--dynamic-batch", action="store_true",
                        help="dynamic batch dimension for servers (default: static batch 1 for edge)")
    parser.add_argument("--include-preprocessing", action="store_true",
                        help="the model takes raw pixels 0..255 and normalises them itself")
    parser.add_argument("--accuracy-budget", type=float, default=1.0, metavar="POINTS",
                        help="allowed drop vs the Keras model in percentage points of top-1 (classifiers) "
                             "or mean IoU (segmentation models) (default 1)")
    parser.add_argument("--float32-bar", type=float, default=None, metavar="MAX_ABS",
                        help="largest max-abs difference between float32 artifact and Keras probabilities that passes "
                             "(default: the task's, 1e-4 per image, 1e-3 per pixel)")
    parser.add_argument("--threads", type=int, default=None, help="interpreter threads for latency (default: all)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs for latency (default 50)")
    parser.add_argument("--calibration-samples", type=int, default=200, help="representative set size")
    parser.add_argument("--eval-samples", type=int, default=None, help="cap on held-out images")
    parser.add_argument("--epochs", type=int, default=2, help="fine-tuning epochs for qat/prune")
    parser.add_argument("--learning-rate", type=float, default=1e-4, help="fine-tuning learning rate")
    parser.add_argument("--qat-path", default="bridge", choices=OwnedChoices(f"{_VARIANTS}:QAT_PATHS"),
                        metavar="PATH", help="qat through tfmot on a tf_keras rebuild (bridge, default) or the Keras 3 QAT layers (keras)")
    parser.add_argument("--checkpoint", default="best", choices=OwnedChoices(f"{_VARIANTS}:CHECKPOINTS"),
                        metavar="NAME", help="model of a run directory: %(choices)s")


def run(args) -> int:
    """Export and print where the artifact and report went."""
    from keras_resnets.environment import native_noise_filtered
    from keras_resnets.export.api import export_model
    from keras_resnets.export.optimize import FineTuneOptions

    with native_noise_filtered():  # the converter's and interpreter's per-call prints; other stderr comes back
        result = export_model(
            args.source, to=args.to, quantize=args.quantize, prune=args.prune, dataset=args.dataset,
            output_dir=args.output, force=args.force, io_type=args.io_type, dynamic_batch=args.dynamic_batch,
            include_preprocessing=args.include_preprocessing, accuracy_budget=args.accuracy_budget,
            num_threads=args.threads, benchmark_runs=args.runs, calibration_samples=args.calibration_samples,
            eval_samples=args.eval_samples, checkpoint=args.checkpoint, keep_float=args.keep_float,
            optimize_for=args.optimize_for, float32_bar=args.float32_bar,
            fine_tune=FineTuneOptions(epochs=args.epochs, learning_rate=args.learning_rate, qat_path=args.qat_path))
    from keras_resnets.export.report import summary_line

    report = result.report
    print(f"wrote {result.artifact} ({report['size_bytes'] / 1024:.1f} KiB)")
    summary = summary_line(report)
    if summary:
        print(summary)
    if report.get("auto"):
        print(report["auto"]["reason"])
    selection = report.get("keep_float")
    if selection:
        layers = selection["layers"]
        print(f"kept {len(layers)} of {len(report['sensitivity']['layers'])} quantized layers in float"
              + (f": {', '.join(layers)}" if layers else " (int8 alone meets the budget)"))
    if report.get("sensitivity", {}).get("chart"):
        print(f"per-layer int8 sensitivity: {result.artifact.parent / report['sensitivity']['chart']}")
    standard = report.get("standard_metadata")
    if standard:
        print(f"metadata: standard TFLite metadata with {standard['labels_file']}; MediaPipe Tasks: {standard['mediapipe']}"
              if standard["standard"] else f"metadata: not written: {standard['reason']}")
    print(f"report: {result.report_md}")
    return 0
