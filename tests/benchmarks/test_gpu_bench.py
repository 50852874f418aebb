"""The GPU throughput benchmark, checked without a GPU.

* ``bench_gpu_throughput.py --tiny`` runs end to end on the JAX backend (CPU) with ``--diagnose``
  and writes the JSON schema of ``benchmarks/results/gpu_*.json``; without PyTorch or CUDA the
  torch side is "unavailable" with its reason and no ratio is given.
* The torch-free arithmetic: the bf16 peak table, model TFLOP/s and MFU, the parameter-count guard
  that refuses a ratio between different networks, the ``--only`` check.
* Where PyTorch is importable: the faithful torch networks (benchmarks/gpu/torch_models.py) have
  exactly our parameter counts and forward FLOPs, compute the same function as our Keras models
  once the weights are copied, and the ``--torch-cpu`` path trains a step.
"""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "benchmarks", "bench_gpu_throughput.py")


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib only at import: no JAX, Keras or PyTorch
    return module


bench = _load_bench()


def _run_tiny(tmp_path, *extra, extra_path=None):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_backend_optimization_level=0",
           "PYTHONPATH": os.pathsep.join(p for p in (ROOT, extra_path) if p), "TF_CPP_MIN_LOG_LEVEL": "2",
           "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, BENCH, "--tiny", "--json", str(out), *extra], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text()), proc.stdout


def test_tiny_cpu_run_writes_schema_and_refuses_ratio_without_torch(tmp_path):
    """--tiny --only cifar_resnet56 --diagnose on CPU: JSON schema, diagnose rows, torch unavailable, no ratio."""
    results, stdout = _run_tiny(tmp_path, "--only", "cifar_resnet56", "--diagnose")
    assert results["schema"] == bench.SCHEMA
    for key in ("date", "device", "peak_bf16_flops", "measured_matmul_bf16_tflops", "versions", "precision",
                "optimizer", "steps", "rounds", "warmup", "tiny", "torch_available", "workloads"):
        assert key in results, key
    assert results["device"]["platform"] == "cpu" and results["peak_bf16_flops"] is None
    assert {"jax", "keras", "torch", "cuda_jax", "cuda_torch"} <= set(results["versions"])
    assert results["optimizer"] == {"name": "sgd", "lr": 0.1, "momentum": 0.9}
    assert list(results["workloads"]) == ["cifar_resnet56"]
    work = results["workloads"]["cifar_resnet56"]
    assert work["model_kwargs"] == {"depth": 8} and work["batch"] == 8
    assert work["forward_flops_per_image"] > 0
    ours = work["keras_resnets"]
    assert ours["images_per_second"] > 0 and ours["mfu"] is None  # no peak known for a CPU
    assert ours["model_tflops_per_second"] == pytest.approx(
        3 * work["forward_flops_per_image"] * ours["images_per_second"] / 1e12, rel=0.01, abs=1e-3)
    assert work["params"]["keras_resnets"]["trainable"] > 0
    if not results["torch_available"]:
        assert work["torch"]["unavailable"] == results["torch_unavailable_reason"]
        assert work["torch"]["unavailable"]  # says why
        assert work["ratio_keras_resnets_over_torch"] is None and work["ratio_refused"]
        assert "no ratio" in stdout
    rows = work["diagnose"]
    hand = "jax hand-written step (jit, donated, async)"
    forward = "keras_resnets forward only (jit, inference)"
    assert isinstance(rows[hand], float) and rows[hand] > 0, rows
    assert isinstance(rows[forward], float) and rows[forward] > 0, rows
    assert isinstance(rows["keras fit, PyDataset of host numpy batches"], float), rows
    assert "summary" in stdout


def test_peak_table_matches_device_names():
    """bf16 peaks by device name; PCIe/NVL before the generic H100; unknown devices give None."""
    assert bench.peak_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert bench.peak_flops("NVIDIA H100 PCIe") == 756e12
    assert bench.peak_flops("NVIDIA H100 NVL") == 835e12
    assert bench.peak_flops("NVIDIA H200") == 989e12
    assert bench.peak_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert bench.peak_flops("cpu") is None


def test_mfu_arithmetic():
    """model FLOP/s = 3 x forward FLOPs x images/s; MFU = that / peak; None without a peak."""
    assert bench.model_flops_per_second(7.7e9, 3000.0) == pytest.approx(6.93e13)
    assert bench.mfu(7.7e9, 3000.0, 989e12) == pytest.approx(6.93e13 / 989e12)
    assert bench.mfu(7.7e9, 3000.0, None) is None
    side = bench.side_figures(2000.0, 1e9, 1e13, batch=256, per_round=[1990.0, 2010.0])
    assert side == {"images_per_second": 2000.0, "ms_per_step": 128.0, "model_tflops_per_second": 6.0,
                    "mfu": 0.6, "rounds_images_per_second": [1990.0, 2010.0]}


def test_parameter_count_guard_refuses_ratio_above_half_percent():
    """Counts within 0.5 % match; further apart, the one-line message refuses the ratio."""
    ours = {"trainable": 1_000_000, "non_trainable": 4_000}
    assert bench.compare_parameters(ours, dict(ours))[:2] == (True, 0.0)
    match, relative, _ = bench.compare_parameters(ours, {"trainable": 1_004_000, "non_trainable": 4_000})
    assert match and relative == pytest.approx(0.004 / 1.004)
    match, relative, message = bench.compare_parameters(ours, {"trainable": 1_010_000, "non_trainable": 4_000})
    assert not match and "no ratio" in message and "1,000,000" in message and "1,010,000" in message


def test_only_names_workloads_and_rejects_others(capsys):
    """--only takes the issue's four workloads; an unknown name is one clear error."""
    assert bench.parse_args(["--only", "resnet50,densenet121"]).names == ["resnet50", "densenet121"]
    assert bench.parse_args([]).names == ["resnet50", "cifar_resnet56", "preact_resnet164", "densenet121"]
    with pytest.raises(SystemExit):
        bench.parse_args(["--only", "resnet51"])
    assert "unknown workload 'resnet51'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.parse_args(["--torch-cpu"])


# --- with PyTorch ------------------------------------------------------------------------------------
def _torch_models(torchvision=False):
    """benchmarks/gpu/torch_models.py; only DenseNet-121 needs torchvision (ResNet-50 is written out there)."""
    pytest.importorskip("torch")
    if torchvision:
        pytest.importorskip("torchvision")
    sys.path.insert(0, os.path.join(ROOT, "benchmarks", "gpu"))
    import torch_models

    return torch_models


def _keras_model(name, size, classes, **kwargs):
    import keras_resnets

    return keras_resnets.create_model(name, input_shape=(size, size, 3), classes=classes,
                                      classifier_activation=None, **kwargs)


def _keras_counts(model):
    return {"trainable": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
            "non_trainable": int(sum(np.prod(w.shape) for w in model.non_trainable_weights))}


FULL = [("cifar_resnet56", 32, 10, "cifar_resnet56"), ("preact_resnet164", 32, 10, "preact_resnet164"),
        ("resnet50", 224, 1000, "resnet50_v1"), ("densenet121", 224, 1000, "torchvision_densenet121")]


@pytest.mark.parametrize("name,size,classes,builder", FULL)
def test_torch_models_have_our_parameter_counts_and_flops(name, size, classes, builder):
    """Faithful torch networks: same trainable parameters, BN statistics and forward FLOPs as ours."""
    torch_models = _torch_models(torchvision=name == "densenet121")
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from keras_resnets.models.profile import profile_model

    ours = _keras_model(name, size, classes)
    theirs = getattr(torch_models, builder)(classes)
    assert torch_models.parameter_counts(theirs) == _keras_counts(ours)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        theirs.eval()(torch.zeros(1, 3, size, size))
    assert counter.get_total_flops() == profile_model(ours).flops


@pytest.mark.parametrize("name,size,classes,kwargs", [
    ("cifar_resnet56", 16, 10, {"depth": 8}), ("preact_resnet164", 16, 10, {"depth": 11}),
    ("resnet50", 64, 7, {}), ("densenet121", 32, 7, {}),
])
def test_torch_models_compute_the_same_function(name, size, classes, kwargs):
    """With our weights copied in, each torch network gives our logits (float32, inference, random BN stats)."""
    torch_models = _torch_models(torchvision=name == "densenet121")
    import torch

    ours = _keras_model(name, size, classes, **kwargs)
    rng = np.random.default_rng(0)
    for layer in ours.layers:  # non-trivial BN statistics, so BN placement matters
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.1, beta.shape),
                               rng.normal(0, 0.1, mean.shape), rng.uniform(0.5, 1.5, var.shape)])
    builders = {"cifar_resnet56": lambda: torch_models.cifar_resnet(kwargs["depth"], classes),
                "preact_resnet164": lambda: torch_models.preact_resnet(kwargs["depth"], classes),
                "resnet50": lambda: torch_models.resnet50_v1(classes),
                "densenet121": lambda: torch_models.torchvision_densenet121(classes)}
    theirs = builders[name]().eval()
    copied = torch_models.copy_keras_weights(theirs, lambda layer: ours.get_layer(layer).get_weights())
    assert copied == sum(1 for layer in ours.layers if layer.weights)
    images = rng.standard_normal((2, size, size, 3)).astype(np.float32)
    expected = np.asarray(ours(images, training=False))
    with torch.no_grad():
        got = theirs(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.linalg.norm(got - expected) / np.linalg.norm(expected) < 1e-4


def test_torch_cpu_side_trains_and_gives_a_ratio(tmp_path):
    """--tiny --torch-cpu: the PyTorch side (eager on CPU) trains, counts match, a ratio is reported."""
    pytest.importorskip("torch")
    pytest.importorskip("torchvision")
    import torch

    site = os.path.dirname(os.path.dirname(torch.__file__))
    results, _ = _run_tiny(tmp_path, "--only", "cifar_resnet56", "--torch-cpu", extra_path=site)
    work = results["workloads"]["cifar_resnet56"]
    assert work["params"]["match"] is True and work["params"]["relative_difference"] == 0.0
    assert work["torch"]["device"] == "cpu" and work["torch"]["images_per_second"] > 0
    assert work["torch"]["forward_flops_per_image_torch_counter"] == work["forward_flops_per_image"]
    assert work["ratio_keras_resnets_over_torch"] > 0


def _result_file(path, device, workloads):
    path.write_text(json.dumps({"schema": bench.SCHEMA, "date": "2026-01-01T00:00:00+00:00",
                                "device": {"platform": "gpu", "name": device, "count": 1},
                                "peak_bf16_flops": 989e12, "workloads": workloads}))
    return str(path)


def test_merge_keeps_ratio_and_adds_diagnostics(tmp_path, capsys):
    """--merge: a keras-only diagnostic run adds its rows without hiding the earlier ratio; devices must agree."""
    measured = {"name": "resnet50", "image_size": 224, "batch": 256, "ratio_keras_resnets_over_torch": 0.9,
                "keras_resnets": {"images_per_second": 2700.0, "mfu": 0.4},
                "torch": {"images_per_second": 3000.0, "mfu": 0.45}}
    diagnostic = {"name": "resnet50", "image_size": 224, "batch": 256, "ratio_keras_resnets_over_torch": None,
                  "keras_resnets": {"images_per_second": 2710.0, "mfu": 0.4}, "torch": {"unavailable": "skipped"},
                  "diagnose": {"jax hand-written step (jit, donated, async)": 80.0}}
    a = _result_file(tmp_path / "a.json", "NVIDIA H100 80GB HBM3", {"resnet50": measured})
    b = _result_file(tmp_path / "b.json", "NVIDIA H100 80GB HBM3", {"resnet50": diagnostic})
    merged = bench.main(["--merge", a, b, "--json", str(tmp_path / "m.json")])
    work = merged["workloads"]["resnet50"]
    assert work["ratio_keras_resnets_over_torch"] == 0.9 and work["torch"]["images_per_second"] == 3000.0
    assert work["diagnose"] == diagnostic["diagnose"]
    assert json.loads((tmp_path / "m.json").read_text())["merged_from"][1]["file"] == "b.json"
    assert "0.90x" in capsys.readouterr().out
    other = _result_file(tmp_path / "c.json", "NVIDIA H200", {"resnet50": measured})
    with pytest.raises(SystemExit, match="measured on 'NVIDIA H200'"):
        bench.main(["--merge", a, other])


def test_device_run_refuses_unknown_phase(tmp_path):
    """device_run.sh names its phases; an unknown one is one line, before anything is installed or run."""
    script = os.path.join(ROOT, "benchmarks", "gpu", "device_run.sh")
    proc = subprocess.run(["bash", script, "benchmark"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "OUT": str(tmp_path / "out"), "WORK": str(tmp_path / "work")})
    assert proc.returncode == 2
    assert "unknown phase 'benchmark'; allowed: all call1 call2" in proc.stdout
