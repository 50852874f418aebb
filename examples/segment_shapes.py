"""Semantic segmentation offline: a dilated ResNet-18 (output stride 8) on the generated shapes set.

    python examples/segment_shapes.py [--epochs 12] [--context basic]

Prints mean IoU and per-class IoU on held-out images (background, circle, square, triangle).
"""
import argparse

import keras

import keras_resnets
from keras_resnets.data.segmentation import load_shapes
from keras_resnets.metrics import MeanIoU


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--context", choices=["none", "basic", "large"], default="none")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    train, validation, info = load_shapes(num_train=512, num_validation=128, image_size=64, batch_size=16)
    model = keras_resnets.create_model("dilated_resnet18_seg", input_shape=info.image_shape, classes=info.num_classes,
                                       context=None if args.context == "none" else args.context,
                                       backbone_kwargs={"stage_widths": (16, 32, 64, 128)})
    model.compile(keras.optimizers.Adam(5e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                  metrics=[MeanIoU(info.num_classes)])
    model.fit(train, validation_data=validation, epochs=args.epochs)
    metric = MeanIoU(info.num_classes)
    for images, masks in validation:
        metric.update_state(masks, model(images, training=False))
    print(f"mean IoU {float(metric.result()):.3f}; per class {[round(float(v), 3) for v in metric.per_class_iou()]}")


if __name__ == "__main__":
    main()
