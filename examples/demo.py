"""`make demo`: train a CIFAR-style ResNet offline, in a few minutes, on two CPU cores.

Data: scikit-learn's bundled handwritten digits (1,797 real 8x8 images), resized to 32x32 and
given as RGB — no download. The exported artifact takes pixels and carries standard TFLite
metadata, so MediaPipe Tasks' ImageClassifier loads the ``.tflite`` alone. Model: the papers' CIFAR ResNet-20 (option A shortcuts). Recipe ``digits_demo``: SGD
with momentum, cosine schedule, pad-4 random-crop augmentation (no flips: digits are not mirror
symmetric). The run directory holds config, checkpoints, best/final models, CSV and TensorBoard
logs, metrics and curves.

Each step is a function; ``main`` runs them in order and passes the run along. ``SMALL=1`` shrinks
it to a smoke run of about a minute (2 epochs, a 2-trial search, a float32 export; no accuracy bar).
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SMALL = os.environ.get("SMALL") == "1"
MODEL = "cifar_resnet20"
DATASET = "digits"
CHANNELS = 3  # the grey digits as RGB images: image clients (MediaPipe Tasks) take 3-channel input
RECIPE = "digits_demo"
EPOCHS = 2 if SMALL else 12
ACCURACY_BAR = 0.0 if SMALL else 0.97
SEARCH_TRIALS, SEARCH_EPOCHS = (2, 1) if SMALL else (4, 2)


def describe_data():
    """Step 1: load the embedded digits once and show what the model will see."""
    from keras_resnets.data import load_dataset
    from keras_resnets.training import get_recipe

    recipe = get_recipe(RECIPE)
    datasets = load_dataset(DATASET, batch_size=recipe.batch_size, augment=recipe.augment, channels=CHANNELS)
    info = datasets.info
    print(f"[1/5] data: {info.name}, {info.num_classes} classes, images {info.image_shape}, "
          f"{info.num_train} train / {info.num_validation} validation / {info.num_test} test, "
          f"augmentation {recipe.augment!r}")
    return datasets


def train_model(datasets, runs_dir: str = "runs"):
    """Step 2: train the model and write the run directory."""
    from keras_resnets.training import train

    run_name = f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"[2/5] training {MODEL} for {EPOCHS} epochs (recipe {RECIPE}) -> {os.path.join(runs_dir, run_name)}")
    return train(MODEL, DATASET, recipe=RECIPE, epochs=EPOCHS, datasets=datasets, channels=CHANNELS, runs_dir=runs_dir,
                 run_name=run_name, seed=0)


def print_summary(result) -> bool:
    """Step 3: report accuracy, time and where every artifact is; return whether the bar was met."""
    metrics, paths = result.metrics, result.paths
    passed = metrics["test_accuracy"] >= ACCURACY_BAR
    print("[3/5] summary")
    print(f"  test accuracy   {metrics['test_accuracy']:.4f}  (bar {ACCURACY_BAR:.2f}: "
          f"{'met' if passed else 'NOT met'}); best validation {metrics['best_val_accuracy']:.4f}")
    print(f"  parameters      {metrics['params']:,}")
    print(f"  training time   {metrics['train_seconds']:.0f} s ({metrics['train_images_per_second']:.0f} images/s)")
    width = max(len(k) for k in paths)
    for name, path in paths.items():
        print(f"  {name:<{width}}  {path}")
    return passed


def compare_with_tflite(result) -> None:
    """Step 5: export the best model for edge (``--quantize auto``) and compare it with Keras."""
    from keras_resnets.export import export_model

    # pixel input (uint8 for the integer variants) with standard metadata: MediaPipe Tasks load the file as it is
    exported = export_model(result.run_dir, quantize="none" if SMALL else "auto", force=True,
                            include_preprocessing=True, benchmark_runs=10 if SMALL else 50)
    report = exported.report
    accuracy, latency = report["accuracy"], report["latency"]
    candidates = report.get("auto", {}).get("candidates", [])
    float32 = next((c for c in candidates if c["precision"] == "float32"), latency)
    print("[5/5] export: Keras vs TFLite (held-out test set)")
    print(f"  Keras top-1     {accuracy['keras_top1']:.2f}%")
    print(f"  TFLite top-1    {accuracy['tflite_top1']:.2f}%  ({report['precision']}, drop "
          f"{accuracy['drop_points']:.2f} points, {accuracy['prediction_agreement']:.1f}% same predictions)")
    print(f"  size / latency  {report['size_bytes'] / 1024:.0f} KiB ({report.get('size_vs_float32') or 1.0:.2f}x float32), "
          f"median {latency['median_ms']:.2f} ms vs float32 {float32['median_ms']:.2f} ms, {latency['threads']} threads")
    print(f"  artifact        {exported.artifact}  (report {exported.report_md})")
    chart = (report.get("sensitivity") or {}).get("chart")
    if chart:
        print(f"  int8 per layer  {exported.artifact.parent / chart}  ({report['sensitivity']['subject']})")


def short_search(runs_dir: str = "runs"):
    """Step 4: a short random search over the study's activations and lr ratios (about a minute).

    Four trials of two epochs each on a depth-8 CIFAR ResNet at the digits' native 8x8; the table
    and heatmap land in ``runs/<name>/tune/``, as ``keras-resnets tune`` writes them.
    """
    from keras_resnets.tuning import tune

    run_name = f"demo-search-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"[4/5] search: random search, {SEARCH_TRIALS} trials x {SEARCH_EPOCHS} epochs over activation x lr ratio "
          f"-> {runs_dir}/{run_name}/tune")
    result = tune(MODEL, DATASET, space="study", space_overrides={"augment": ["none"]}, tuner="random",
                  max_trials=SEARCH_TRIALS, max_epochs=SEARCH_EPOCHS, model_kwargs={"depth": 8}, image_size=(8, 8),
                  runs_dir=runs_dir, run_name=run_name, seed=0)
    values = ", ".join(f"{k}={v}" for k, v in result.best["values"].items())
    print(f"  best: {values} (validation accuracy {result.best['score']:.4f}); table {result.paths['results.md']}, "
          f"heatmap {result.paths['heatmap.png']}")
    return result


def main() -> int:
    started = time.perf_counter()
    datasets = describe_data()
    result = train_model(datasets)
    passed = print_summary(result)
    short_search()
    compare_with_tflite(result)
    print(f"demo done in {time.perf_counter() - started:.0f} s; test accuracy bar {'met' if passed else 'NOT met'}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
