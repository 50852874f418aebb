#!/usr/bin/env python3
"""Classify or segment images with an exported ``.tflite`` on an edge device: numpy + ai-edge-litert only.

The model's sidecar ``<model>.json`` (written by ``keras-resnets export``) supplies the task
(classification or segmentation), labels, input size, pixel normalisation and quantization
parameters, so this file needs nothing else from the training side. Copy the two files and this
script to the device.

Usage:
    python litert_runner.py MODEL.tflite IMAGE [IMAGE ...]   # PNG, PGM/PPM, .npy (needs no Pillow);
                                                              # JPEG and others through Pillow if installed
    python litert_runner.py MODEL.tflite batch.npy --top-k 3  # (n, h, w, c) raw pixels 0..255
    python litert_runner.py SEG.tflite photo.png --output-dir masks   # segmentation: label maps as
                                                              # masks/photo.labels.npy and a colour .png
    python litert_runner.py MODEL.tflite --benchmark 100 --threads 4

Python API:
    runner = EdgeClassifier("model.tflite")
    probabilities = runner.predict(pixels)       # (n, h, w, c) raw pixels 0..255
    runner.classify(["cat.png"], top_k=3)
    segmenter = EdgeSegmenter("seg.tflite")      # or open_model(path): the runner the sidecar's task needs
    label_maps = segmenter.segment(pixels)       # (n, h, w) class indices (per-pixel arg-max)
"""
from __future__ import annotations

import argparse
import json
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

SIDECAR_FORMAT = "keras_resnets.tflite/1"
TASKS = ("classification", "segmentation")


class EdgeModel:
    """A ``.tflite`` model plus its sidecar metadata: preprocessing, inference, benchmark.

    Args:
        model_path: the ``.tflite`` file; its metadata is ``<same stem>.json`` next to it.
        num_threads: interpreter threads.
    """

    task = None  # the sidecar task a subclass handles (None: any)

    def __init__(self, model_path, num_threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        model_path = Path(model_path)
        self.metadata = read_sidecar(model_path)
        task = self.metadata["task"]
        if self.task is not None and task != self.task:
            raise ValueError(f"{model_path} is a {task} model; use {_RUNNERS[task].__name__} (or open_model) "
                             f"instead of {type(self).__name__}")
        self.task = task
        self.interpreter = Interpreter(model_path=str(model_path), num_threads=num_threads)
        self.interpreter.allocate_tensors()
        self.num_threads = num_threads
        spec = self.metadata["input"]
        self.height, self.width, self.channels = spec["height"], spec["width"], spec["channels"]
        self.labels = self.metadata["labels"]
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self._batch = int(self._input["shape"][0])
        self._dynamic = int(self._input["shape_signature"][0]) == -1

    def preprocess(self, pixels: np.ndarray) -> np.ndarray:
        """Raw pixels ``(n, h, w, c)`` 0..255 -> the model's input tensor (normalised, quantized)."""
        spec = self.metadata["input"]
        x = np.asarray(pixels, np.float32)
        if x.shape[1:] != (self.height, self.width, self.channels):
            raise ValueError(f"pixels of shape {x.shape[1:]} do not match the model input "
                             f"{(self.height, self.width, self.channels)}")
        if spec["pixels"] == "normalized":
            norm = spec["normalization"]
            x = (x - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
        quant = spec["quantization"]
        if quant is None:
            return x
        dtype = np.dtype(spec["dtype"])
        info = np.iinfo(dtype)
        return np.clip(np.round(x / quant["scale"] + quant["zero_point"]), info.min, info.max).astype(dtype)

    def predict(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities for raw pixels ``(n, h, w, c)``: ``(n, classes)``, or ``(n, h, w, classes)``
        per pixel for segmentation."""
        inputs = self.preprocess(pixels)
        step = len(inputs) if self._dynamic else self._batch
        outputs = []
        for start in range(0, len(inputs), max(step, 1)):
            batch = inputs[start:start + step]
            if self._dynamic and tuple(self._input["shape"]) != batch.shape:
                self.interpreter.resize_tensor_input(self._input["index"], list(batch.shape))
                self.interpreter.allocate_tensors()
                self._input = self.interpreter.get_input_details()[0]
                self._output = self.interpreter.get_output_details()[0]
            self.interpreter.set_tensor(self._input["index"], batch)
            self.interpreter.invoke()
            outputs.append(self._dequantize(self.interpreter.get_tensor(self._output["index"])))
        return np.concatenate(outputs)

    def benchmark(self, runs: int = 100, warmup: int = 10) -> dict:
        """Median / p90 latency (ms) of one batch-1 invocation."""
        self.predict(np.zeros((1, self.height, self.width, self.channels), np.float32))
        for _ in range(warmup):
            self.interpreter.invoke()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            self.interpreter.invoke()
            times.append((time.perf_counter() - start) * 1e3)
        return {"median_ms": float(np.median(times)), "p90_ms": float(np.percentile(times, 90)),
                "runs": runs, "warmup": warmup, "threads": self.num_threads}

    def _dequantize(self, y: np.ndarray) -> np.ndarray:
        quant = self.metadata["output"]["quantization"]
        if quant is None:
            return y.astype(np.float32)
        return (y.astype(np.float32) - quant["zero_point"]) * quant["scale"]


class EdgeClassifier(EdgeModel):
    """A ``.tflite`` classifier (sidecar task ``classification``)."""

    task = "classification"

    def classify(self, paths, top_k: int = 1) -> list:
        """``[(path, [(label, probability), ...]), ...]`` for image files or ``.npy`` batches."""
        results = []
        for path in paths:
            pixels = load_pixels(path, self.height, self.width, self.channels)
            for i, probs in enumerate(self.predict(pixels)):
                order = np.argsort(probs)[::-1][:top_k]
                name = str(path) if len(pixels) == 1 else f"{path}[{i}]"
                results.append((name, [(self.labels[j], float(probs[j])) for j in order]))
        return results


class EdgeSegmenter(EdgeModel):
    """A ``.tflite`` segmentation model (sidecar task ``segmentation``): per-pixel label maps."""

    task = "segmentation"

    def segment(self, pixels: np.ndarray) -> np.ndarray:
        """Label maps ``(n, h, w)`` (the per-pixel arg-max class, at the model's resolution)."""
        labels = np.argmax(self.predict(pixels), axis=-1)
        return labels.astype(np.uint8 if len(self.labels) <= 256 else np.int32)

    def class_fractions(self, label_map: np.ndarray) -> dict:
        """Label -> fraction of the map's pixels, for the classes present."""
        counts = np.bincount(label_map.reshape(-1), minlength=len(self.labels))
        return {self.labels[c]: float(counts[c] / label_map.size) for c in np.flatnonzero(counts)}


_RUNNERS = {"classification": EdgeClassifier, "segmentation": EdgeSegmenter}


def open_model(model_path, num_threads: int = 1) -> EdgeModel:
    """The runner for the task the model's sidecar names (:class:`EdgeClassifier` or :class:`EdgeSegmenter`)."""
    return _RUNNERS[read_sidecar(model_path)["task"]](model_path, num_threads)


def read_sidecar(model_path) -> dict:
    """The metadata ``<stem>.json`` next to ``model_path``, checked for the sidecar format and task.

    Sidecars written before segmentation support have no ``task``: they are classifiers.
    """
    model_path = Path(model_path)
    sidecar = model_path.with_suffix(".json")
    if not sidecar.is_file():
        raise ValueError(f"{model_path} has no sidecar metadata {sidecar.name} next to it")
    metadata = json.loads(sidecar.read_text())
    if metadata.get("format") != SIDECAR_FORMAT:
        raise ValueError(f"{sidecar} has format {metadata.get('format')!r}, expected {SIDECAR_FORMAT!r}")
    metadata.setdefault("task", "classification")
    if metadata["task"] not in TASKS:
        raise ValueError(f"{sidecar} has task {metadata['task']!r}; this runner handles {', '.join(TASKS)}")
    return metadata


def save_label_map(label_map: np.ndarray, stem) -> tuple:
    """Write ``<stem>.labels.npy`` (class indices) and ``<stem>.labels.png`` (a colour per class).

    Returns the two paths. The PNG is encoded here (zlib), so it needs no Pillow.
    """
    stem = Path(stem)
    npy, png = stem.with_name(stem.name + ".labels.npy"), stem.with_name(stem.name + ".labels.png")
    np.save(npy, label_map)
    _write_png(png, label_colors(int(label_map.max()) + 1)[label_map])
    return npy, png


def label_colors(count: int) -> np.ndarray:
    """``(count, 3)`` uint8 colours, the Pascal VOC palette (class 0 black, then distinct colours)."""
    colors = np.zeros((count, 3), np.uint8)
    for index in range(count):
        value, shift = index, 7
        while value:
            for channel in range(3):
                colors[index, channel] |= ((value >> channel) & 1) << shift
            value >>= 3
            shift -= 1
    return colors


def _write_png(path: Path, image: np.ndarray) -> None:
    """8-bit RGB ``(h, w, 3)`` as a non-interlaced PNG."""
    height, width = image.shape[:2]
    rows = np.concatenate([np.zeros((height, 1), np.uint8), image.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes()))
                     + chunk(b"IEND", b""))


def load_pixels(path, height: int, width: int, channels: int) -> np.ndarray:
    """An image file or ``.npy`` batch as raw pixels ``(n, height, width, channels)`` float32 0..255."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        pixels = np.load(path).astype(np.float32)
        pixels = pixels[None] if pixels.ndim == 3 else pixels
    else:
        if suffix == ".png":
            image = _read_png(path)
        elif suffix in (".pgm", ".ppm", ".pnm"):
            image = _read_pnm(path)
        else:
            image = _read_with_pillow(path)
        pixels = _resize(_set_channels(image.astype(np.float32), channels), height, width)[None]
    if pixels.ndim != 4:
        raise ValueError(f"{path}: expected (n, h, w, c) pixels, got shape {pixels.shape}")
    return pixels


def _read_with_pillow(path: Path) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise ValueError(f"{path}: this format needs Pillow; PNG, PGM/PPM and .npy work without it") from None
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB" if image.mode not in ("L", "I;16") else "L"))


def _read_pnm(path: Path) -> np.ndarray:
    """Binary PGM (P5) / PPM (P6), 8-bit."""
    data = path.read_bytes()
    fields, pos = [], 0
    while len(fields) < 4:  # magic, width, height, maxval; skip whitespace and comments
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    magic, width, height, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic not in (b"P5", b"P6") or maxval > 255:
        raise ValueError(f"{path}: only 8-bit binary PGM (P5) / PPM (P6) are supported, got {magic!r}")
    channels = 1 if magic == b"P5" else 3
    pixels = np.frombuffer(data, np.uint8, width * height * channels, pos + 1)
    return pixels.reshape(height, width, channels)


def _read_png(path: Path) -> np.ndarray:
    """8-bit, non-interlaced greyscale / RGB / RGBA / grey+alpha PNG."""
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or channels is None or interlace:
        raise ValueError(f"{path}: PNG with bit depth {depth}, colour type {color}, interlace {interlace} "
                         "needs Pillow; plain 8-bit grey/RGB/RGBA PNGs work without it")
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, 1 + width * channels)
    image = np.zeros((height, width * channels), np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        previous = image[y - 1] if y else np.zeros_like(line)
        if kind == 0:
            image[y] = line
        elif kind == 2:
            image[y] = (line + previous) & 0xFF
        else:  # Sub, Average, Paeth depend on the pixel to the left: decode sequentially
            row = image[y]
            for x in range(line.size):
                left = row[x - channels] if x >= channels else 0
                up, up_left = previous[x], previous[x - channels] if x >= channels else 0
                if kind == 1:
                    predictor = left
                elif kind == 3:
                    predictor = (left + up) // 2
                else:
                    p = left + up - up_left
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                    predictor = left if pa <= pb and pa <= pc else (up if pb <= pc else up_left)
                row[x] = (line[x] + predictor) & 0xFF
    image = image.reshape(height, width, channels).astype(np.uint8)
    return image[..., :3] if channels == 4 else image[..., :1] if channels == 2 else image


def _set_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[-1] == channels:
        return image
    if image.shape[-1] == 1 and channels == 3:
        return np.repeat(image, 3, axis=-1)
    if image.shape[-1] == 3 and channels == 1:
        return (image @ np.array([0.2989, 0.587, 0.114], np.float32))[..., None]
    raise ValueError(f"cannot convert a {image.shape[-1]}-channel image to {channels} channels")


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize (half-pixel centres, like tf.image.resize)."""
    in_h, in_w = image.shape[:2]
    if (in_h, in_w) == (height, width):
        return image
    ys = np.clip((np.arange(height) + 0.5) * in_h / height - 0.5, 0, in_h - 1)
    xs = np.clip((np.arange(width) + 0.5) * in_w / width - 0.5, 0, in_w - 1)
    y0, x0 = np.floor(ys).astype(int), np.floor(xs).astype(int)
    y1, x1 = np.minimum(y0 + 1, in_h - 1), np.minimum(x0 + 1, in_w - 1)
    wy, wx = (ys - y0)[:, None, None], (xs - x0)[None, :, None]
    top = image[y0][:, x0] * (1 - wx) + image[y0][:, x1] * wx
    bottom = image[y1][:, x0] * (1 - wx) + image[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Classify or segment images with a keras-resnets .tflite "
                                                 "(no TensorFlow).")
    parser.add_argument("model", help=".tflite file (its <stem>.json sidecar must sit next to it)")
    parser.add_argument("inputs", nargs="*", help="image files (PNG, PGM/PPM; others via Pillow) or .npy batches")
    parser.add_argument("--top-k", type=int, default=1, help="classes to print per image (classifiers)")
    parser.add_argument("--output-dir", default=None, metavar="DIR",
                        help="segmentation: write each label map as DIR/<image>.labels.npy and a colour .png")
    parser.add_argument("--threads", type=int, default=1, help="interpreter threads")
    parser.add_argument("--benchmark", type=int, default=0, metavar="RUNS", help="time this many invocations")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        runner = open_model(args.model, num_threads=args.threads)
        if runner.task == "segmentation":
            results = _segment(runner, args.inputs, args.output_dir)
        else:
            if args.output_dir:
                raise ValueError(f"--output-dir writes label maps of segmentation models; {args.model} is a "
                                 f"{runner.task} model")
            results = runner.classify(args.inputs, top_k=args.top_k)
        latency = runner.benchmark(args.benchmark) if args.benchmark else None
    except (ValueError, OSError) as err:
        print(f"litert_runner: error: {err}", file=sys.stderr)
        return 2
    if args.json:
        if runner.task == "segmentation":
            predictions = results
        else:
            predictions = [{"input": n, "top": [{"label": l, "probability": p} for l, p in top]} for n, top in results]
        print(json.dumps({"task": runner.task, "predictions": predictions, "latency": latency}))
        return 0
    for result in results:
        if runner.task == "segmentation":
            classes = ", ".join(f"{label} {100 * share:.1f}%" for label, share in result["classes"].items())
            written = f" -> {result['label_map']}" if result["label_map"] else ""
            print(f"{result['input']}: {result['height']}x{result['width']} label map; {classes}{written}")
        else:
            name, top = result
            print(f"{name}: " + ", ".join(f"{label} ({prob:.3f})" for label, prob in top))
    if latency:
        print(f"latency: median {latency['median_ms']:.3f} ms, p90 {latency['p90_ms']:.3f} ms over "
              f"{latency['runs']} runs, {latency['threads']} thread(s)")
    return 0


def _segment(runner: EdgeSegmenter, inputs, output_dir) -> list:
    """Label maps of every input image, optionally written to ``output_dir``, as JSON-ready dicts."""
    out = Path(output_dir) if output_dir else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    for path in inputs:
        pixels = load_pixels(path, runner.height, runner.width, runner.channels)
        # photo.png -> photo; a second photo.jpg -> photo_jpg; batch.npy -> batch_0, batch_1, ...
        base = Path(path).stem if Path(path).stem not in used else Path(path).name.replace(".", "_")
        for i, label_map in enumerate(runner.segment(pixels)):
            single = len(pixels) == 1
            entry = {"input": str(path) if single else f"{path}[{i}]", "height": int(label_map.shape[0]),
                     "width": int(label_map.shape[1]), "classes": runner.class_fractions(label_map),
                     "label_map": None, "image": None}
            if out is not None:
                stem = base if single else f"{base}_{i}"
                while stem in used:
                    stem += "_"
                used.add(stem)
                npy, png = save_label_map(label_map, out / stem)
                entry.update(label_map=str(npy), image=str(png))
            results.append(entry)
    return results


if __name__ == "__main__":
    sys.exit(main())
