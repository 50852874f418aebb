"""Semantic segmentation offline, Yu & Koltun's staged recipe, on the generated shapes.

    python examples/segment_shapes.py [--epochs 8] [--context-epochs 2] [--seeds 0] [--export]

For each seed, same total epochs in both arms: stage 1 trains a front-end — a narrow dilated
ResNet-18 at output stride 8, no context module — for ``epochs - context_epochs`` epochs; then (a)
the front-end alone trains ``--context-epochs`` more (a resumed copy), and (b) the basic context
module (identity-initialised) is added on top and trained ``--context-epochs`` epochs with the
front-end frozen (``init_from`` + ``freeze``): Yu & Koltun's staged training.
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
# Adam at a constant lr (recipe shapes_segmentation), so a continued run equals a straight one.
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


def continue_front_end(runs_dir: str, stage1, name: str, epochs: int, seed: int):
    """The front-end alone: a copy of the stage-1 run trained ``epochs`` more (``continue_epochs``);
    at a constant learning rate that equals training it straight through."""
    import shutil

    shutil.copytree(stage1.run_dir, os.path.join(runs_dir, name), ignore=shutil.ignore_patterns(".lock"))
    return keras_resnets.train(MODEL, "shapes", model_kwargs={**WIDTHS, "context": None},
                               epochs=stage1.metrics["epochs"], seed=seed, runs_dir=runs_dir, run_name=name,
                               resume=True, continue_epochs=epochs, **COMMON)


def compare(runs_dir: str, seeds, epochs: int, context_epochs: int) -> dict:
    """Front-end alone vs staged front-end + context, same total epochs, per seed; returns mIoU lists.

    Both arms share the front-end's first ``epochs - context_epochs`` epochs (stage 1); then the
    front-end alone trains ``context_epochs`` more, while the staged arm adds the context module and
    trains only it for ``context_epochs``.
    """
    results = {"stage 1": [], "front-end": [], "front-end + context": []}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for seed in seeds:
        stage1 = train_front_end(runs_dir, f"stage1-{stamp}-s{seed}", epochs - context_epochs, seed)
        alone = continue_front_end(runs_dir, stage1, f"front-{stamp}-s{seed}", context_epochs, seed)
        stage2 = train_context_stage(runs_dir, f"stage2-{stamp}-s{seed}", stage1.run_dir, context_epochs, seed)
        for label, run in (("stage 1", stage1), ("front-end", alone), ("front-end + context", stage2)):
            results[label].append(run.metrics["test_mean_iou"])
        print(f"seed {seed}: stage 1 {stage1.metrics['test_mean_iou']:.3f}; front-end alone "
              f"{alone.metrics['test_mean_iou']:.3f}; + context {stage2.metrics['test_mean_iou']:.3f} "
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
    for label in ("stage 1", "front-end", "front-end + context"):
        values = np.asarray(results[label])
        print(f"{label:<20} test mIoU {values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0:.3f} "
              f"over seeds {args.seeds}")
    if args.export:
        exported = keras_resnets.export_model(results["last_staged_run"], quantize="none", force=True)
        print(f"exported {exported.artifact}")


if __name__ == "__main__":
    main()
