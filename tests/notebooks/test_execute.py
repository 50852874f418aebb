"""CI executes every reproduction notebook and every example in SMALL mode, failing on any cell error.

The committed notebooks carry the outputs of full runs (``make notebooks``); here they run with
``SMALL=1`` into a temporary copy, so the repository's outputs are left alone.
"""
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.tf_only

ROOT = pathlib.Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
# The CIFAR-10 example needs CIFAR-10: CI feeds it TFDS's offline mock harness instead.
MOCKED_TFDS = {"train_cifar10_he2016.py"}


def _small_env(tmp_path) -> dict:
    env = dict(os.environ, SMALL="1", KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["TFDS_DATA_DIR"] = str(tmp_path / "tfds")
    return env


def test_every_reproduction_notebook_is_listed():
    names = {p.name for p in NOTEBOOKS}
    assert names, "notebooks/0*.ipynb missing"
    assert all(name[:2].isdigit() for name in names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_in_small_mode(path, tmp_path):
    """nbclient runs every cell with SMALL=1; a cell error fails the test with the cell's traceback."""
    out = tmp_path / path.name
    result = subprocess.run([sys.executable, str(ROOT / "notebooks" / "run_notebooks.py"), "--small",
                             "--out-dir", str(tmp_path), "--timeout", "600", path.name],
                            cwd=tmp_path, env=_small_env(tmp_path), capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert out.is_file()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs_in_small_mode(path, tmp_path):
    """Every script in examples/ runs end to end with SMALL=1 (the CIFAR-10 one on tfds.testing.mock_data)."""
    if path.name in MOCKED_TFDS:
        # mock_data supplies examples but leaves the split sizes empty, which the loader reads for its
        # progress bar; 200 examples leave a stratified validation hold-out with every class
        code = ("import runpy, sys, tensorflow_datasets as tfds\n"
                "from tensorflow_datasets.core import dataset_info, splits as splits_lib\n"
                "dataset_info.DatasetInfo.splits = property(lambda self: splits_lib.SplitDict(\n"
                "    [splits_lib.SplitInfo(name=n, shard_lengths=[200], num_bytes=0) for n in ('train', 'test')]))\n"
                f"sys.argv = [{str(path)!r}, '--download']\n"
                "with tfds.testing.mock_data(num_examples=200):\n"
                f"    runpy.run_path({str(path)!r}, run_name='__main__')\n")
        command = [sys.executable, "-c", code]
    else:
        command = [sys.executable, str(path)]
    result = subprocess.run(command, cwd=tmp_path, env=_small_env(tmp_path), capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
