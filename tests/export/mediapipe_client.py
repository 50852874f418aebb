"""Classify or segment with MediaPipe Tasks: ``python mediapipe_client.py TASK IMAGES.npy OUT.json MODEL.tflite...``.

Runs in its own environment (``make mediapipe-venv``: mediapipe pins an absl-py that the project's
TensorFlow Model Optimization pin excludes), so it imports numpy and mediapipe only. ``IMAGES.npy``
holds uint8 RGB images ``(n, height, width, 3)`` at the models' input size; ``OUT.json`` maps each
model to, per image, the top category's index and name (classification) or to the labels and the
category masks (segmentation), or to ``{"error": message}`` where MediaPipe refuses it.
"""
import json
import sys

import numpy as np
from mediapipe.tasks.python import vision
from mediapipe.tasks.python.core.base_options import BaseOptions
from mediapipe.tasks.python.vision.core.image import Image, ImageFormat


def run(model: str, pixels: np.ndarray, task: str):
    results = []
    if task == "classification":
        options = vision.ImageClassifierOptions(base_options=BaseOptions(model_asset_path=model), max_results=1)
        with vision.ImageClassifier.create_from_options(options) as classifier:
            for image in pixels:
                top = classifier.classify(Image(ImageFormat.SRGB, np.ascontiguousarray(image))).classifications[0]
                best = top.categories[0]
                results.append({"index": best.index, "name": best.category_name, "score": best.score})
    else:
        options = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=model),
                                               output_category_mask=True, output_confidence_masks=False)
        with vision.ImageSegmenter.create_from_options(options) as segmenter:
            labels = list(segmenter.labels)
            for image in pixels:
                mask = segmenter.segment(Image(ImageFormat.SRGB, np.ascontiguousarray(image))).category_mask
                mask = np.asarray(mask.numpy_view())
                results.append({"mask": (mask[..., 0] if mask.ndim == 3 else mask).astype(int).tolist()})
            results = {"labels": labels, "images": results}
    return results


def main(task: str, images: str, out: str, *models: str) -> None:
    pixels = np.load(images)
    results = {}
    for model in models:
        try:
            results[model] = run(model, pixels, task)
        except (ValueError, RuntimeError, NotImplementedError) as err:  # the client refused the model
            results[model] = {"error": f"{type(err).__name__}: {err}"}
    with open(out, "w") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
