"""Semantic segmentation offline, Yu & Koltun's staged recipe, on the generated shapes.

    python examples/segment_shapes.py [--epochs 8] [--context-epochs 2] [--seeds 0] [--export]

For each seed: (1) a front-end alone — a narrow dilated ResNet-18 at output stride 8, no context
module — trained ``--epochs`` epochs; (2) the staged model with the same total epochs: the front-end
trained ``epochs - context_epochs`` epochs, then the basic context module (identity-initialised) added
on top and trained ``--context-epochs`` epochs with the front-end frozen (``init_from`` + ``freeze``).
Prints the held-out mean IoU of both (mean ± std over the seeds) and writes ordinary run directories
under ``--runs-dir``; ``--export`` exports the last staged run to TFLite, verified by mean IoU.
``SMALL=1`` shrinks everything to a smoke run of about a minute. docs/segmentation.md has the figures.
"""
import argparse
import os
import time

import numpy as np

import keras_resnets

SMALL = os.environ.get("SMALL") == "1"
MODEL = "dilated_resnet18_seg"
WIDTHS = {"backbone_kwargs": {"stage_widths": [8, 16, 32, 64]}}
SHAPES = {"num_train": 48 if SMALL else 256, "num_validation": 32 if SMALL else 128, "max_shapes": 3}
COMMON = dict(dataset_kwargs=SHAPES, image_size=(32, 32), verbose=0)


def train_front_end(runs_dir: str, name: str, epochs: int, seed: int):
    """A front-end alone: the dilated backbone, the per-class scores, no context module."""
    return keras_resnets.train(MODEL, "shapes", model_kwargs={**WIDTHS, "context": None}, epochs=epochs, seed=seed,
                               runs_dir=runs_dir, run_name=name, **COMMON)


def train_context_stage(runs_dir: str, name: str, front_end_run: str, epochs: int, seed: int):
    """The context module on top of a trained front-end, which stays frozen."""
    return keras_resnets.train(MODEL, "shapes", model_kwargs={**WIDTHS, "context": "basic"}, epochs=epochs,
                               seed=seed, init_from=front_end_run, freeze="backbone", runs_dir=runs_dir,
                               run_name=name, **COMMON)


def compare(runs_dir: str, seeds, epochs: int, context_epochs: int) -> dict:
    """Front-end alone vs staged front-end + context, same total epochs, per seed; returns mIoU lists."""
    results = {"front-end": [], "front-end + context": []}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for seed in seeds:
        alone = train_front_end(runs_dir, f"front-{stamp}-s{seed}", epochs, seed)
        stage1 = train_front_end(runs_dir, f"stage1-{stamp}-s{seed}", epochs - context_epochs, seed)
        stage2 = train_context_stage(runs_dir, f"stage2-{stamp}-s{seed}", stage1.run_dir, context_epochs, seed)
        results["front-end"].append(alone.metrics["test_mean_iou"])
        results["front-end + context"].append(stage2.metrics["test_mean_iou"])
        print(f"seed {seed}: front-end {alone.metrics['test_mean_iou']:.3f}, staged front-end "
              f"{stage1.metrics['test_mean_iou']:.3f} -> + context {stage2.metrics['test_mean_iou']:.3f} "
              f"({stage2.run_dir})", flush=True)
    results["last_staged_run"] = stage2.run_dir
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2 if SMALL else 8, help="total epochs of either model")
    parser.add_argument("--context-epochs", type=int, default=1 if SMALL else 2,
                        help="epochs of the context stage (the front-end trains the rest)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--export", action="store_true", help="export the last staged run (float32 TFLite)")
    args = parser.parse_args()
    results = compare(args.runs_dir, args.seeds, args.epochs, args.context_epochs)
    for label in ("front-end", "front-end + context"):
        values = np.asarray(results[label])
        print(f"{label:<20} test mIoU {values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f} "
              f"over seeds {args.seeds}")
    if args.export:
        exported = keras_resnets.export_model(results["last_staged_run"], quantize="none", force=True)
        print(f"exported {exported.artifact}")


if __name__ == "__main__":
    main()
