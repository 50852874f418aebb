"""``textured_digits``: a synthetic, offline 10-class set that does not saturate a ResNet-20.

The embedded digits are solved (99 %) within a minute, so architectural variants cannot be told
apart on them. This set is built from the same data (scikit-learn's 1,797 real 8x8 handwritten
digits, shipped with the package) and made harder, deterministically for a seed:

* every digit is drawn several times (``copies``), each time through its own random affine map:
  rotation +-15 degrees, scale 0.85-1.15, shear +-0.15, shift +-8 % of the frame;
* its strokes (the 0..16 intensities, bilinearly sampled, used as opacity) are painted in a random
  colour with a random texture over a background of another random colour and texture (stripes,
  checkerboard, noise or gradient); the two colours are 90-200 apart in RGB, so the digit stays
  visible but colour says nothing about the class;
* clutter: 0-2 random line strokes in random colours, some across the digit (occlusion);
* Gaussian pixel noise.

It is SYNTHETIC: numbers measured on it say how variants compare with each other at laptop scale,
not what they reach on CIFAR-10. Train, validation and test images come from disjoint sets of the
original digits (test: scikit-learn's digits split 80/20, stratified, seed 0, as ``digits``), so the
test set measures generalisation to unseen handwriting, and it is identical across training seeds.
Images are rendered directly at the requested size (no resize step).
"""
from __future__ import annotations

import functools

import numpy as np

NAME = "textured_digits"
CLASSES = tuple(str(d) for d in range(10))
COPIES = 4  # renderings per original digit


def _pattern(rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A random ``(h, w)`` mixing pattern in 0..1: stripes, checkerboard, noise or a gradient."""
    size = rows.shape[0]
    kind = rng.integers(4)
    if kind == 0:
        angle, period = rng.uniform(0, np.pi), rng.uniform(2.5, 8.0) * size / 32
        return 0.5 + 0.5 * np.sin(2 * np.pi * (rows * np.cos(angle) + cols * np.sin(angle)) / period)
    if kind == 1:
        cell = max(1, int(rng.integers(2, 6) * size / 32))
        return ((rows // cell + cols // cell) % 2).astype(np.float32)
    if kind == 2:
        return rng.uniform(0, 1, rows.shape)
    angle = rng.uniform(0, 2 * np.pi)
    return np.clip((rows * np.cos(angle) + cols * np.sin(angle)) / (size * 1.4) + 0.5, 0, 1)


def _textured_layer(rng: np.random.Generator, rows, cols, base, strength: float) -> np.ndarray:
    """``(h, w, 3)`` colours 0..255: colour ``base`` mixed with a nearby colour through a pattern."""
    other = np.clip(base + rng.normal(0, 45, 3), 0, 255)
    mix = strength * _pattern(rng, rows, cols)[..., None]
    return base * (1 - mix) + other * mix


def _contrasting_colour(rng: np.random.Generator, base: np.ndarray) -> np.ndarray:
    """A colour at least ~90 (and up to ~200) away from ``base`` in RGB, so the shape stays visible."""
    direction = rng.normal(0, 1, 3)
    candidate = base + direction / np.linalg.norm(direction) * rng.uniform(90, 200)
    return np.clip(np.where((candidate < 0) | (candidate > 255), 2 * base - candidate, candidate), 0, 255)


def _strokes(rng: np.random.Generator, image: np.ndarray, rows, cols, count: int) -> None:
    """Draw ``count`` anti-aliased line segments of random colour and width onto ``image``."""
    size = rows.shape[0]
    for _ in range(count):
        p0, p1 = rng.uniform(0, size, 2), rng.uniform(0, size, 2)
        width = rng.uniform(0.5, 1.0) * size / 32
        direction = p1 - p0
        length2 = max(float(direction @ direction), 1e-6)
        t = np.clip(((rows - p0[0]) * direction[0] + (cols - p0[1]) * direction[1]) / length2, 0, 1)
        dist = np.hypot(rows - (p0[0] + t * direction[0]), cols - (p0[1] + t * direction[1]))
        alpha = np.clip(width - dist + 0.5, 0, 1)[..., None]
        image[:] = image * (1 - alpha) + rng.uniform(0, 255, 3) * alpha


def _digit_opacity(digit: np.ndarray, rows, cols, rng: np.random.Generator) -> np.ndarray:
    """Sample an 8x8 digit (0..16) through a random affine map onto the ``rows x cols`` grid; 0..1."""
    from scipy.ndimage import map_coordinates

    size = rows.shape[0]
    angle, scale = np.deg2rad(rng.uniform(-15, 15)), rng.uniform(0.85, 1.15)
    shear, shift = rng.uniform(-0.15, 0.15), rng.uniform(-0.08, 0.08, 2) * size
    # output pixel -> digit coordinates: centre, undo shift, rotate, shear, scale to the 8x8 grid
    y, x = rows - size / 2 - shift[0], cols - size / 2 - shift[1]
    cos, sin = np.cos(angle), np.sin(angle)
    yr, xr = cos * y - sin * x, sin * y + cos * x
    xr = xr + shear * yr
    pixels_per_cell = size * scale / 8.0
    sy, sx = yr / pixels_per_cell + 3.5, xr / pixels_per_cell + 3.5
    return map_coordinates(digit / 16.0, [sy, sx], order=1, mode="constant", cval=0.0)


def render(digits: np.ndarray, image_size, rng: np.random.Generator) -> np.ndarray:
    """Render each 8x8 digit once on a random textured scene: ``(n, h, w, 3)`` uint8.

    Args:
        digits: ``(n, 8, 8)`` intensities 0..16 (scikit-learn's digits images).
        image_size: ``(height, width)``; must be square.
        rng: the generator every random choice is drawn from (the images are a pure function of
            its state and ``digits``).
    """
    height, width = image_size
    rows, cols = np.mgrid[0:height, 0:width].astype(np.float32) + 0.5
    out = np.empty((len(digits), height, width, 3), np.uint8)
    for i, digit in enumerate(digits):
        base = rng.uniform(0, 255, 3)
        background = _textured_layer(rng, rows, cols, base, rng.uniform(0.2, 0.7))
        foreground = _textured_layer(rng, rows, cols, _contrasting_colour(rng, base), rng.uniform(0.0, 0.4))
        alpha = np.clip(_digit_opacity(digit, rows, cols, rng) * 1.3, 0, 1)[..., None]
        image = background * (1 - alpha) + foreground * alpha
        _strokes(rng, image, rows, cols, int(rng.integers(0, 3)))
        image += rng.normal(0, rng.uniform(2, 8), image.shape)
        out[i] = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    return out


def _source_digits(validation_split: float):
    """scikit-learn's digits split into disjoint train / validation / test sets of originals."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x_rest, x_test, y_rest, y_test = train_test_split(bunch.images, bunch.target, test_size=0.2, random_state=0,
                                                      stratify=bunch.target)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=validation_split, random_state=0,
                                                      stratify=y_rest)
    return (x_train, y_train), (x_val, y_val), (x_test, y_test)


@functools.lru_cache(maxsize=4)
def _generate(image_size: tuple, seed: int, copies: int, validation_split: float):
    splits = []
    for split_id, (digits, labels) in enumerate(_source_digits(validation_split)):
        rng = np.random.default_rng([seed, split_id])
        digits, labels = np.repeat(digits, copies, axis=0), np.repeat(labels, copies).astype(np.int32)
        order = rng.permutation(len(labels))
        splits.append((render(digits[order], image_size, rng), labels[order]))
    return tuple(splits)


def load_textured_digits(image_size=(32, 32), channels: int = 3, validation_split: float = 0.1, seed: int = 0,
                         copies: int = COPIES):
    """Generate the three splits of ``textured_digits`` (see the module docstring).

    The same arguments always give the same images (splits are cached per process).

    Args:
        image_size: ``(height, width)`` to render at; square, at least 8.
        channels: 3 (RGB) or 1 (luminance).
        validation_split: fraction of the training digits held out (with all their renderings).
        seed: generator seed of the images (not of training: ``load_dataset``'s seed does not change
            the images, so runs with different training seeds share one test set).
        copies: renderings per original digit (4: 5,172 training, 576 validation, 1,440 test images).

    Returns:
        ``keras_resnets.data.sources.ImageArrays``.
    """
    from keras_resnets.data.sources import ImageArrays, _set_channels

    size = tuple(int(d) for d in image_size)
    if len(size) != 2 or size[0] != size[1] or size[0] < 8:
        raise ValueError(f"textured_digits needs a square image_size of at least 8x8; got {image_size!r}")
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ValueError(f"copies must be a positive integer; got {copies!r}")
    if not 0.0 < validation_split < 1.0:
        raise ValueError(f"validation_split must be in (0, 1); got {validation_split}")
    splits = _generate(size, int(seed), copies, float(validation_split))
    train, validation, test = ((_set_channels(x, channels), y) for x, y in splits)
    return ImageArrays(train, validation, test, list(CLASSES))
