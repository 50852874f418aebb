"""Training without TensorFlow: the numpy pipelines of keras_resnets.data.arrays, JAX-only and torch-only runs.

A GPU machine may have JAX and Keras but no TensorFlow; ``keras_resnets.train`` then feeds the
in-memory datasets (digits, textured_digits, shapes) through ``ArrayDatasets``. The end-to-end test
runs the CLI in a child process where ``import tensorflow`` fails.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_resnets.data import arrays
from keras_resnets.data.datasets import DatasetInfo

CHILD = os.path.join(os.path.dirname(__file__), "no_tensorflow_child.py")


def _datasets(count=50, batch_size=16, augment="crop_flip", seed=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(count) % 10
    info = DatasetInfo("toy", 10, tuple("0123456789"), (8, 8, 1), (100.0,), (50.0,), count, 20, 20)
    held_out = (images[:20], labels[:20])
    return arrays.ArrayDatasets.from_arrays(info, (images, labels), held_out, held_out, batch_size=batch_size,
                                            augment=augment, seed=seed)


def test_training_epochs_are_a_function_of_seed_and_epoch_so_resume_sees_the_same_batches():
    data = _datasets()
    steps = data.steps_per_epoch
    whole = list(data.train(3, 0))
    resumed = list(data.train(3, 1))
    assert steps == 4 and len(whole) == 3 * steps and len(resumed) == 2 * steps
    for (x, y), (rx, ry) in zip(whole[steps:], resumed):
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    first_labels = [np.sort(np.concatenate([y for _, y in whole[e * steps:(e + 1) * steps]])) for e in range(3)]
    assert all(np.array_equal(labels, first_labels[0]) for labels in first_labels)  # every image once per epoch
    assert not np.array_equal(whole[0][1], whole[steps][1])  # a new order each epoch
    other_seed = _datasets(seed=4)
    assert not np.array_equal(next(iter(other_seed.train(1)))[1], whole[0][1])


def test_crop_and_crop_flip_take_a_window_of_the_zero_padded_image():
    rng = np.random.default_rng(1)
    images = rng.uniform(1, 255, (6, 8, 8, 2)).astype(np.float32)
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)))  # 8x8: CIFAR's 4 at 32 scaled to 1
    for policy in ("crop", "crop_flip"):
        out = arrays.augment_batch(images, policy, np.random.default_rng(7))
        assert out.shape == images.shape
        for image, source in zip(out, padded):
            windows = [source[r:r + 8, c:c + 8] for r in range(3) for c in range(3)]
            windows += [w[:, ::-1] for w in windows] if policy == "crop_flip" else []
            assert any(np.array_equal(image, w) for w in windows)
    np.testing.assert_array_equal(arrays.augment_batch(images, "none", None), images)


def test_evaluation_splits_are_normalised_in_order_and_full_batches_drop_the_remainder():
    data = _datasets(batch_size=8)
    batches = list(data.validation)
    assert [len(y) for _, y in batches] == [8, 8, 4]
    x, _ = batches[0]
    expected = (data.validation.images[:8].astype(np.float32) - 100.0) / 50.0
    np.testing.assert_allclose(x, expected, rtol=1e-6)
    full = data.full_batches()
    assert full.steps_per_epoch == 50 // 8 and len(full.validation) == 2
    assert all(len(y) == 8 for _, y in full.train(1))


def test_resize_bilinear_matches_tf_image_resize():
    tf = pytest.importorskip("tensorflow")
    from sklearn.datasets import load_digits

    digits = np.clip(np.rint(load_digits().images[:200] * (255 / 16)), 0, 255).astype(np.uint8)[..., None]
    for size in ((32, 32), (16, 24), (5, 5)):
        ours = arrays.resize_bilinear(digits, size).astype(int)
        reference = np.clip(np.rint(tf.image.resize(digits.astype(np.float32), size).numpy()), 0, 255).astype(int)
        # only values within float rounding of .5 may round the other way
        assert np.abs(ours - reference).max() <= 1 and np.mean(ours == reference) > 0.99
        if size == (32, 32):  # the digits' default size: the very same images as with TensorFlow
            np.testing.assert_array_equal(ours, reference)


def test_policies_and_datasets_that_need_tensorflow_are_refused_in_one_line():
    with pytest.raises(arrays.TensorFlowRequiredError, match="crop_flip_color_blur.*allowed.*none, crop, crop_flip"):
        arrays.check_policy("crop_flip_color_blur")
    with pytest.raises(arrays.TensorFlowRequiredError, match="expand=1"):
        arrays.check_policy("crop", expand=1)


def test_constant_schedule_fits_jax_int32_iterations():
    """A constant rate is one piece whose end no run reaches; that boundary must be an int32 (JAX's
    integers without x64), which 2**62 was not: segmentation's Adam recipe failed on JAX."""
    from keras_resnets.training import schedules

    schedule = schedules.build_schedule("constant", 0.01, total_steps=100)
    assert all(0 < b < 2**31 for b in schedule.boundaries)
    assert float(schedule(10**6)) == pytest.approx(0.01)


def test_export_on_another_backend_is_refused_in_one_line(monkeypatch):
    """A run trained on JAX exports under KERAS_BACKEND=tensorflow; export elsewhere says so up front."""
    import keras

    from keras_resnets.export import export_model
    from keras_resnets.export.errors import ExportError

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ExportError, match="export needs KERAS_BACKEND=tensorflow.*got 'jax'"):
        export_model("no-such-run")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_cli_trains_and_resumes_without_tensorflow(backend, tmp_path):
    """End to end, as on a GPU machine with Keras and JAX or PyTorch only: ``keras-resnets train`` on the
    digits (2 epochs, crop augmentation, constant rate), ``--resume --continue-epochs 1``, and one-line
    refusals of what needs tf.data; TensorFlow is never imported."""
    env = {**os.environ, "KERAS_BACKEND": backend, "XLA_FLAGS": "--xla_backend_optimization_level=0",
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, CHILD, str(tmp_path)], env=env, capture_output=True, text=True,
                            timeout=900)
    lines = [line for line in result.stdout.splitlines() if line.startswith("FINDINGS ")]
    assert result.returncode == 0 and lines, result.stdout[-3000:] + result.stderr[-3000:]
    findings = json.loads(lines[-1][len("FINDINGS "):])
    assert findings["train_exit"] == 0 and findings["resume_exit"] == 0
    assert findings["tensorflow_imported"] is False
    assert findings["cifar10"].startswith("TensorFlowRequiredError: dataset 'cifar10' needs TensorFlow")
    assert "digits, textured_digits, shapes" in findings["cifar10"]
    assert findings["color_blur"].startswith("TensorFlowRequiredError: augment='crop_flip_color_blur'")
    assert findings["cli_exit_without_tensorflow"] == 2
    for command in ("evaluate", "export"):  # one line and status 2, as train's refusals
        code, lines = findings[f"{command}_without_tensorflow"]
        assert code == 2 and len(lines) == 1 and lines[0].startswith(f"keras-resnets {command}: error: "), lines
    assert findings["shapes"] == ["ArrayDatasets", [4, 16, 16, 3], "int32", [4, 16, 16]]
    run = tmp_path / f"{backend}-only"
    metrics = json.loads((run / "metrics.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert metrics["status"] == "completed" and metrics["epochs"] == 3 and metrics["resumed_from_epoch"] == 2
    assert config["backend"] == backend and config["augment"] == "crop"
    assert len((run / "history.csv").read_text().strip().splitlines()) == 1 + 3
    assert (run / "best.keras").is_file() and (run / "final.keras").is_file() and (run / "curves.png").is_file()
    assert not (run / "tensorboard").exists()
