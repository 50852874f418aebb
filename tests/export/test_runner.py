"""The standalone edge runner works with numpy + ai-edge-litert only (TensorFlow import blocked)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_resnets.export import export_model

pytestmark = pytest.mark.tf_only

RUNNER = Path(__file__).resolve().parents[2] / "export" / "litert_runner.py"

# Any import of tensorflow / keras / tf_keras in the child fails loudly.
BLOCK_TENSORFLOW = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "keras", "tf_keras", "keras_resnets"):
            raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, _Block())
sys.argv = sys.argv[1:]
import runpy
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def int8_artifact(tmp_path_factory, digits_run):
    out = tmp_path_factory.mktemp("edge")
    return export_model(digits_run, quantize="int8", io_type="uint8", include_preprocessing=True,
                        output_dir=out, eval_samples=100, calibration_samples=50).artifact


def _digits_pixels(count):
    from keras_resnets.data import load_dataset

    data = load_dataset("digits", image_size=(16, 16), channels=1)
    images, labels = next(iter(data.test))
    pixels = images.numpy()[:count] * np.asarray(data.info.std) + np.asarray(data.info.mean)
    return np.clip(np.rint(pixels), 0, 255).astype(np.uint8), labels.numpy()[:count]


def _run(*args):
    proc = subprocess.run([sys.executable, "-c", BLOCK_TENSORFLOW, str(RUNNER), *map(str, args)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_runner_classifies_png_and_numpy_without_tensorflow(int8_artifact, tmp_path):
    from PIL import Image

    from export_helpers import tflite_outputs

    pixels, labels = _digits_pixels(16)
    np.save(tmp_path / "batch.npy", pixels)
    Image.fromarray(pixels[0, ..., 0]).save(tmp_path / "digit.png")
    Image.fromarray(np.repeat(pixels[1], 3, axis=-1)).save(tmp_path / "digit_rgb.png")
    result = json.loads(_run(int8_artifact, tmp_path / "batch.npy", tmp_path / "digit.png",
                             tmp_path / "digit_rgb.png", "--top-k", "2", "--json", "--benchmark", "20"))
    predictions = result["predictions"]
    assert len(predictions) == 18 and all(len(p["top"]) == 2 for p in predictions)
    batch_top = [int(p["top"][0]["label"]) for p in predictions[:16]]
    expected = np.argmax(tflite_outputs(int8_artifact, pixels.astype(np.float32)), -1)
    np.testing.assert_array_equal(batch_top, expected)  # same answers as the verified pipeline
    assert np.mean(np.asarray(batch_top) == labels) >= 0.7
    assert predictions[16]["top"][0]["label"] == predictions[0]["top"][0]["label"]  # PNG == array
    assert predictions[17]["top"][0]["label"] == predictions[1]["top"][0]["label"]  # RGB -> grey
    assert result["latency"]["runs"] == 20 and result["latency"]["median_ms"] > 0


def test_runner_refuses_a_model_without_sidecar(int8_artifact, tmp_path):
    lonely = tmp_path / "model.tflite"
    lonely.write_bytes(int8_artifact.read_bytes())
    proc = subprocess.run([sys.executable, str(RUNNER), str(lonely)], capture_output=True, text=True)
    assert proc.returncode == 2 and "has no sidecar metadata model.json" in proc.stderr
