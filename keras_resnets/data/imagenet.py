"""The ImageNet augmentation and evaluation crops of *Deep Residual Learning*, per image.

Unlike the batch policies of ``augment.py`` (which work on equally sized in-memory images), these
work on one source image of any size: encoded bytes from a folder, or a decoded TFDS image. Every
crop is a *window* ``[y, x, height, width]`` of the source; for JPEG bytes only that window is
decoded (``decode_and_crop_jpeg``), which is what makes large photos cheap to augment.

Training policies (``TRAIN_POLICIES``):

- ``imagenet_scale`` — He et al. 2016, section 3.4: the shorter side is resized to a random
  ``S`` in [256, 480], a random 224x224 crop is taken, flipped with probability 1/2, and AlexNet's
  PCA colour augmentation ("lighting", standard deviation 0.1) is added. The window of the crop in
  source coordinates is ``224 * short / S`` pixels wide, so the source is never resized whole.
- ``inception_crop`` — the common random-resized-crop variant (Szegedy et al.; Goyal et al.): a
  window of 8 %..100 % of the area with aspect ratio 3/4..4/3, resized to 224x224, flipped, plus
  the same lighting.

For output sizes other than 224 the scale range and the evaluation resize follow proportionally
(``S`` in [256, 480] * size / 224). Mean subtraction is the pipeline's normalisation
(``(pixels - mean) / std`` per channel, docs/CONTRACTS.md).

Evaluation crops: ``centre_window`` (resize the shorter side to 256, take the central 224), and
the 10-crop and multi-scale protocols of ``keras_resnets.training.evaluate``.
"""
from __future__ import annotations

import math

try:
    import tensorflow as tf
except ImportError:  # JAX-only installs (keras_resnets.data.arrays); tf.data pipelines need it
    tf = None

TRAIN_POLICIES = ("imagenet_scale", "inception_crop")
REFERENCE_SIZE = 224
SCALE_RANGE = (256, 480)  # shorter side, for a 224 crop
EVAL_RESIZE = 256  # shorter side before the central 224 crop
AREA_RANGE = (0.08, 1.0)
RATIO_RANGE = (3 / 4, 4 / 3)
LIGHTING_STD = 0.1
# AlexNet's PCA of ImageNet RGB pixels (0..1 scale), as used by fb.resnet.torch for the ResNets.
EIGENVALUES = (0.2175, 0.0188, 0.0045)
EIGENVECTORS = ((-0.5675, 0.7192, 0.4009), (-0.5808, -0.0045, -0.8140), (-0.5836, -0.6948, 0.4203))


def validate_train_policy(policy: str) -> str:
    """Return ``policy`` if it is one of ``TRAIN_POLICIES``, else raise ``ValueError``."""
    if policy not in TRAIN_POLICIES:
        raise ValueError(f"unknown ImageNet policy {policy!r}; allowed: {', '.join(TRAIN_POLICIES)}")
    return policy


def source_shape(source) -> tf.Tensor:
    """``[height, width]`` (int32) of a source: JPEG bytes (header only), other bytes, or an image."""
    if source.dtype == tf.string:
        return tf.cond(
            tf.io.is_jpeg(source),
            lambda: tf.image.extract_jpeg_shape(source)[:2],
            lambda: tf.shape(tf.io.decode_image(source, channels=3, expand_animations=False))[:2],
        )
    return tf.shape(source)[:2]


def decode_window(source, window, channels: int = 3) -> tf.Tensor:
    """Pixels (uint8) of ``window = [y, x, h, w]`` of a source; JPEG bytes decode only the window.

    Args:
        source: encoded image bytes (scalar string) or a decoded ``(h, w, c)`` uint8 image.
        window: int32 ``[y, x, height, width]`` inside the source.
        channels: 1 or 3 channels out.
    """
    window = tf.cast(window, tf.int32)

    def crop(image):
        return tf.slice(image, [window[0], window[1], 0], [window[2], window[3], -1])

    if source.dtype == tf.string:
        image = tf.cond(
            tf.io.is_jpeg(source),
            lambda: tf.image.decode_and_crop_jpeg(source, window, channels=channels),
            lambda: crop(tf.io.decode_image(source, channels=channels, expand_animations=False)),
        )
    else:
        image = crop(_set_channels(source, channels))
    image.set_shape([None, None, channels])
    return image


def _set_channels(image, channels: int):
    if image.shape[-1] == channels:
        return image
    if channels == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.cast(tf.round(tf.image.rgb_to_grayscale(tf.cast(image, tf.float32))), image.dtype)


def scale_window(shape, seed, size: int = REFERENCE_SIZE, scale_range=SCALE_RANGE) -> tf.Tensor:
    """Window of the paper's scale augmentation: shorter side to ``S ~ U[scale_range]``, random crop.

    Args:
        shape: ``[height, width]`` of the source.
        seed: stateless seed, shape ``(2,)``.
        size: output size (224 in the paper); ``scale_range`` is scaled by ``size / 224``.
        scale_range: range of the resized shorter side for a 224 output.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
    low, high = (s * size / REFERENCE_SIZE for s in scale_range)
    scale = tf.random.stateless_uniform([], seeds[0], low, high)
    shape = tf.cast(shape, tf.float32)
    side = tf.minimum(tf.reduce_min(shape) * size / scale, tf.reduce_min(shape))
    side = tf.maximum(tf.cast(tf.round(side), tf.int32), 1)
    room = tf.cast(shape, tf.int32) - side
    offsets = tf.random.stateless_uniform([2], seeds[1], 0.0, 1.0) * tf.cast(room + 1, tf.float32)
    offsets = tf.minimum(tf.cast(offsets, tf.int32), room)
    return tf.stack([offsets[0], offsets[1], side, side])


def inception_window(shape, seed, area_range=AREA_RANGE, ratio_range=RATIO_RANGE, attempts: int = 10):
    """Window of the random-resized crop: area share and log-uniform aspect ratio, 10 attempts.

    The first attempt that fits is taken; when none fits, the central square of the shorter side.

    Args:
        shape: ``[height, width]`` of the source.
        seed: stateless seed, shape ``(2,)``.
        area_range: share of the source's area.
        ratio_range: width / height.
        attempts: candidates drawn.
    """
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    height, width = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    area = tf.random.stateless_uniform([attempts], seeds[0], *area_range) * height * width
    log_ratio = tf.random.stateless_uniform([attempts], seeds[1], math.log(ratio_range[0]), math.log(ratio_range[1]))
    ratio = tf.exp(log_ratio)
    w = tf.round(tf.sqrt(area * ratio))
    h = tf.round(tf.sqrt(area / ratio))
    fits = (w <= width) & (h <= height) & (w >= 1) & (h >= 1)
    first = tf.argmax(tf.cast(fits, tf.int32))
    short = tf.minimum(height, width)
    h = tf.where(tf.reduce_any(fits), h[first], short)
    w = tf.where(tf.reduce_any(fits), w[first], short)
    offsets = tf.random.stateless_uniform([2], seeds[2], 0.0, 1.0) * tf.stack([height - h + 1, width - w + 1])
    y = tf.minimum(tf.floor(offsets[0]), height - h)
    x = tf.minimum(tf.floor(offsets[1]), width - w)
    return tf.cast(tf.stack([y, x, h, w]), tf.int32)


def centre_window(shape, size: int = REFERENCE_SIZE, resize: float = EVAL_RESIZE) -> tf.Tensor:
    """Window of the single centre crop: shorter side resized to ``resize * size / 224``, central ``size``.

    Args:
        shape: ``[height, width]`` of the source.
        size: output size.
        resize: shorter side before the crop, for a 224 output.
    """
    shape = tf.cast(shape, tf.float32)
    side = tf.reduce_min(shape) * REFERENCE_SIZE / resize
    side = tf.maximum(tf.cast(tf.round(side), tf.int32), 1)
    offsets = (tf.cast(shape, tf.int32) - side) // 2
    return tf.stack([offsets[0], offsets[1], side, side])


def lighting(image: tf.Tensor, seed, std: float = LIGHTING_STD) -> tf.Tensor:
    """AlexNet's PCA colour augmentation: add ``eigvec @ (alpha * eigval)``, alpha ~ N(0, std).

    Args:
        image: ``(h, w, 3)`` float image in 0..255 (other channel counts are returned unchanged).
        seed: stateless seed, shape ``(2,)``.
        std: standard deviation of alpha.
    """
    if image.shape[-1] != 3:
        return image
    alpha = tf.random.stateless_normal([3], seed, stddev=std)
    offset = tf.linalg.matvec(tf.constant(EIGENVECTORS), alpha * tf.constant(EIGENVALUES)) * 255.0
    return tf.clip_by_value(image + offset, 0.0, 255.0)


def train_image(source, policy: str, seed, size: int, channels: int = 3) -> tf.Tensor:
    """One augmented training image (float32, 0..255, ``(size, size, channels)``).

    Args:
        source: encoded bytes or a decoded uint8 image.
        policy: one of ``TRAIN_POLICIES``.
        seed: stateless seed, shape ``(2,)``.
        size: output height and width.
        channels: 1 or 3.
    """
    validate_train_policy(policy)
    seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    shape = source_shape(source)
    if policy == "imagenet_scale":
        window = scale_window(shape, seeds[0], size)
    else:
        window = inception_window(shape, seeds[0])
    image = tf.image.resize(decode_window(source, window, channels), (size, size))
    image = tf.image.stateless_random_flip_left_right(image, seeds[1])
    image = lighting(image, seeds[2])
    image.set_shape([size, size, channels])
    return image


def eval_image(source, size: int, channels: int = 3) -> tf.Tensor:
    """The single centre crop of a source (float32, 0..255, ``(size, size, channels)``)."""
    image = decode_window(source, centre_window(source_shape(source), size), channels)
    image = tf.image.resize(image, (size, size))
    image.set_shape([size, size, channels])
    return image


def full_image(source, channels: int = 3) -> tf.Tensor:
    """The whole source image, decoded (uint8), for protocols that crop it several times."""
    if source.dtype == tf.string:
        image = tf.io.decode_image(source, channels=channels, expand_animations=False)
    else:
        image = _set_channels(source, channels)
    image.set_shape([None, None, channels])
    return image


def resize_shorter(image: tf.Tensor, shorter: int) -> tf.Tensor:
    """Resize ``image`` (aspect kept) so that its shorter side is ``shorter`` pixels (float32)."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = shorter / tf.reduce_min(shape)
    new = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), shorter)
    return tf.image.resize(image, new)


def ten_crops(image: tf.Tensor, size: int, resize: float = EVAL_RESIZE) -> tf.Tensor:
    """The 10-crop protocol (AlexNet; He et al.): shorter side to 256, four corners and the centre,
    each also mirrored. Returns ``(10, size, size, c)`` float32.

    Args:
        image: decoded ``(h, w, c)`` image.
        size: crop size (224).
        resize: shorter side before cropping, for a 224 crop (scaled by ``size / 224``).
    """
    resized = resize_shorter(image, int(round(resize * size / REFERENCE_SIZE)))
    height, width = tf.shape(resized)[0], tf.shape(resized)[1]
    corners = [(0, 0), (0, width - size), (height - size, 0), (height - size, width - size),
               ((height - size) // 2, (width - size) // 2)]
    crops = tf.stack([tf.slice(resized, [y, x, 0], [size, size, -1]) for y, x in corners])
    return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)
