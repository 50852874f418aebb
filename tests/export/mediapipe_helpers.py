"""Run artifacts through MediaPipe Tasks, which lives in its own environment (``make mediapipe-venv``)."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = Path(__file__).with_name("mediapipe_client.py")
ENV_VAR = "KERAS_RESNETS_MEDIAPIPE_PYTHON"


def mediapipe_python() -> Path:
    """The environment's interpreter; skips when none is configured (``make test`` sets one)."""
    configured = os.environ.get(ENV_VAR)
    if not configured:
        pytest.skip(f"MediaPipe runs in its own environment: `make mediapipe-venv` and set {ENV_VAR}="
                    ".venv-mediapipe/bin/python (make test does both)")
    python = ROOT / configured
    assert python.exists(), f"{ENV_VAR}={configured} does not exist: run `make mediapipe-venv`"
    return python


def mediapipe_results(task: str, pixels: np.ndarray, models, tmp_path) -> dict:
    """``{model path: results}`` from ``mediapipe_client.py`` on uint8 RGB ``pixels``."""
    python = mediapipe_python()
    images, out = tmp_path / "mediapipe_images.npy", tmp_path / "mediapipe_results.json"
    np.save(images, np.asarray(pixels, np.uint8))
    run = subprocess.run([str(python), str(CLIENT), task, str(images), str(out), *map(str, models)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(out.read_text())


def raw_pixels(data, count: int) -> np.ndarray:
    """The first ``count`` held-out images of export data as uint8 pixels."""
    return np.clip(np.round(data.model_inputs(data.eval_images[:count], True)), 0, 255).astype(np.uint8)
