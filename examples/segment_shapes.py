"""Semantic segmentation offline: a dilated ResNet-18 (output stride 8) on the generated shapes set.

    python examples/segment_shapes.py [--epochs 12] [--context basic] [--quantize auto] [--run-dir DIR]

Prints mean IoU and per-class IoU on held-out images (background, circle, square, triangle), saves
the model as a run directory (``runs/segment_shapes``: ``best.keras`` + ``config.json``) and exports
it for the edge (float32 TFLite at batch 1 by default, verified against Keras by mean IoU), printing
the report's summary line. ``--quantize skip`` leaves the export out.
"""
import argparse
import json
from pathlib import Path

import keras

import keras_resnets
from keras_resnets.data.segmentation import load_shapes
from keras_resnets.metrics import MeanIoU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--context", choices=["none", "basic", "large"], default="none")
    parser.add_argument("--quantize", choices=["none", "float16", "dynamic", "int8", "auto", "skip"], default="none",
                        help="TFLite export precision (none = float32); skip = no export")
    parser.add_argument("--run-dir", default="runs/segment_shapes", help="where to save the run and its export")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    shapes = {"num_train": 512, "num_validation": 128, "max_shapes": 3}
    train, validation, info = load_shapes(image_size=64, batch_size=16, **shapes)
    model_kwargs = {"context": None if args.context == "none" else args.context,
                    "backbone_kwargs": {"stage_widths": [16, 32, 64, 128]}}
    model = keras_resnets.create_model("dilated_resnet18_seg", input_shape=info.image_shape, classes=info.num_classes,
                                       **model_kwargs)
    model.compile(keras.optimizers.Adam(5e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                  metrics=[MeanIoU(info.num_classes)])
    model.fit(train, validation_data=validation, epochs=args.epochs)
    metric = MeanIoU(info.num_classes)
    for images, masks in validation:
        metric.update_state(masks, model(images, training=False))
    print(f"mean IoU {float(metric.result()):.3f}; per class {[round(float(v), 3) for v in metric.per_class_iou()]}")
    if args.quantize == "skip":
        return
    # A run directory (docs/CONTRACTS.md) is all the export needs: it regenerates the shapes from the config.
    run = Path(args.run_dir)
    run.mkdir(parents=True, exist_ok=True)
    model.save(run / "best.keras")
    config = {**info.to_config(), "model": "dilated_resnet18_seg", "model_kwargs": model_kwargs, "data_dir": None,
              "dataset_kwargs": shapes, "classifier_activation": None, "epochs": args.epochs, "batch_size": 16,
              "lr": 5e-3, "schedule": "constant", "augment": "none", "seed": 0,
              "keras_resnets_version": keras_resnets.__version__}
    (run / "config.json").write_text(json.dumps(config, indent=2))
    from keras_resnets.export import export_model
    from keras_resnets.export.report import summary_line

    result = export_model(run, quantize=args.quantize, force=True)
    print(f"exported {result.artifact}: {summary_line(result.report)}")


if __name__ == "__main__":
    main()
