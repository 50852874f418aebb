"""Edge deployment as a measurement: one trained classifier, every TFLite mode, scored on the same images.

Not a paper claim, so no verdict rule: it measures, per artifact, top-1 on the dataset's fixed test
split (raw pixels through the package's edge runner, ``export/litert_runner.py``), agreement of its
top-1 with the Keras model's on every image, file size and batch-1 latency with its spread (several
rounds; medians of rounds, their range, and the p10-p90 of every timed call). The Keras model is
scored on the same raw pixels, normalised as the artifacts' sidecar says.

    keras-resnets reproduce edge_deployment            # laptop scale: ResNet-8, textured_digits 16x16
    keras-resnets reproduce edge_deployment --scale smoke

A mode that fails the package's own verification is recorded with its message (a result too).
The results file is ``notebooks/results/06_edge_deployment.json`` (``-smoke`` at the smoke scale).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from keras_resnets.experiments.spec import check_scale


DATASET = "textured_digits"  # the test split's raw pixels are what the edge runner is given


@dataclass(frozen=True)
class EdgeBudget:
    """The classifier to train and how to time its artifacts."""

    model: str = "cifar_resnet20"
    model_kwargs: dict = field(default_factory=lambda: {"depth": 8})
    image_size: tuple = (16, 16)
    recipe: str = "digits_demo"
    epochs: int = 12
    seed: int = 0
    test_images: int | None = None  # None: the whole test split
    latency_rounds: int = 5
    latency_runs: int = 200
    threads: int = 1
    qat_epochs: int = 2
    qat_images: int = 4096

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Measurement:
    """A declared measurement: what it measures, on what, with which modes (per scale); no verdict rule."""

    name: str
    stem: str
    title: str
    question: str
    expectation: str
    budgets: dict
    modes: dict

    def budget_at(self, scale: str) -> EdgeBudget:
        if check_scale(scale) not in self.budgets:
            raise ValueError(f"{self.name} is a measurement, not a paper's experiment: it has no {scale!r} scale; "
                             f"allowed: {', '.join(self.budgets)}")
        return self.budgets[scale]


# (label, export_model keywords); "keep_float": "most_sensitive" is the int8 report's most harmful layer.
_MODES = (
    ("float32", {}),
    ("float16", {"quantize": "float16"}),
    ("dynamic int8", {"quantize": "dynamic"}),
    ("int8", {"quantize": "int8"}),
    ("selective int8", {"quantize": "int8", "keep_float": "most_sensitive"}),
    ("QAT int8 (tfmot bridge)", {"quantize": "qat"}),
    ("QAT int8 (Keras 3 layers)", {"quantize": "qat", "qat_path": "keras"}),
)

EDGE_DEPLOYMENT = Measurement(
    name="edge_deployment",
    stem="06_edge_deployment",
    title="Edge deployment: Keras and every TFLite mode of one classifier on the same images",
    question=("What does each TFLite export mode cost and save (file size, batch-1 latency on this CPU) and how "
              "far do its predictions move from the Keras model's, scored by the edge runner alone (numpy + "
              "ai-edge-litert) on the same test images? Reference point: MLPerf Tiny's image-classification task "
              "asks a ResNet-8 (int8 TFLite) for 85 % top-1 on CIFAR-10."),
    expectation=("ResNet-8 (MLPerf Tiny's model) trained once (seed 0) on textured_digits 16x16. Expected: float32 "
                 "agrees with Keras on every image; float16 and dynamic int8 on nearly every image; full int8 "
                 "about 1/4 of the float32 size within about a point of Keras' top-1; latencies of a few tens "
                 "of microseconds, where the load of a shared machine can exceed the differences between modes "
                 "(hence several rounds and their spread)."),
    budgets={"laptop": EdgeBudget(),
             "smoke": EdgeBudget(image_size=(8, 8), epochs=1, test_images=64, latency_rounds=2, latency_runs=20,
                                 qat_epochs=1, qat_images=256)},
    # the smoke scale (tests, SMALL=1 notebooks) exports the modes whose code paths differ least in cost
    modes={"laptop": _MODES, "smoke": tuple(m for m in _MODES if m[0] in ("float32", "int8", "selective int8"))},
)

MEASUREMENTS = {EDGE_DEPLOYMENT.name: EDGE_DEPLOYMENT}


def _latency(call, rounds: int, runs: int, warmup: int = 10) -> dict:
    """Batch-1 latency of ``call()`` in ms: ``rounds`` rounds of ``runs`` timed calls."""
    medians, every = [], []
    for _ in range(rounds):
        for _ in range(warmup):
            call()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            call()
            times.append((time.perf_counter() - start) * 1e3)
        medians.append(float(np.median(times)))
        every += times
    return {"median_ms": float(np.median(medians)), "round_medians_ms": medians,
            "p10_ms": float(np.percentile(every, 10)), "p90_ms": float(np.percentile(every, 90)),
            "rounds": rounds, "runs": runs}


def _edge_runner():
    """``export/litert_runner.py``, the file users copy to the device (not a package module)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[2] / "export" / "litert_runner.py"
    if not path.is_file():
        raise FileNotFoundError(f"the edge runner {path} is missing (it ships with the repository, not the wheel)")
    spec = importlib.util.spec_from_file_location("litert_runner", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _size(path) -> int:
    return os.path.getsize(path) if os.path.isfile(path) else sum(
        os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def run_edge_deployment(scale: str = "laptop", *, results_dir: str = os.path.join("notebooks", "results"),
                        figures_dir: str | None = os.path.join("notebooks", "figures"), work_dir: str | None = None,
                        progress=print) -> dict:
    """Train the classifier, export every mode, score Keras and each artifact on the same images.

    Returns the results (also written to ``<results_dir>/06_edge_deployment[-scale].json``). A results
    file of the same settings is read back instead of measuring again (move it away to remeasure).
    """
    measurement = EDGE_DEPLOYMENT
    budget = measurement.budget_at(scale)
    suffix = "" if scale == "laptop" else f"-{scale}"
    path = os.path.join(results_dir, f"{measurement.stem}{suffix}.json")
    protocol = {"scale": scale, "budget": budget.to_dict(), "modes": [[m, o] for m, o in measurement.modes[scale]]}
    if os.path.isfile(path):
        with open(path) as f:
            results = json.load(f)
        if results.get("protocol") != protocol:
            raise ValueError(f"{path} was written with other settings; move it away to measure afresh or pass "
                             "another results_dir")
        results["path"] = path
        return results
    import keras

    from keras_resnets.experiments.store import cpu_name, write_results

    say = progress or (lambda line: None)
    start = time.time()
    work_dir = work_dir or tempfile.mkdtemp(prefix="edge-deployment-")
    run, pixels, labels = _train(budget, work_dir, say)
    rows = _measure_modes(measurement.modes[scale], run, pixels, labels, budget, work_dir, say)
    results = {"measurement": measurement.name, "stem": measurement.stem, "title": measurement.title,
               "question": measurement.question, "expectation": measurement.expectation, "scale": scale,
               "dataset": DATASET, "protocol": protocol,
               "classifier": {"model": budget.model, "kwargs": budget.model_kwargs, "seed": budget.seed,
                              "params": run.metrics.get("params"), "epochs": budget.epochs,
                              "run_test_accuracy": run.metrics.get("best_model_test_accuracy",
                                                                   run.metrics["test_accuracy"])},
               "test_images": int(len(labels)), "chance": 1.0 / int(labels.max() + 1), "rows": rows,
               "verdicts": [], "summary": "measured (no verdict: not a paper claim)",
               "backend": f"keras {keras.__version__} / {keras.backend.backend()}", "cpu": cpu_name(),
               "load_average": list(os.getloadavg()), "wall_seconds": round(time.time() - start, 1), "complete": True}
    write_results(results, path)
    if figures_dir:
        plot_edge(results, os.path.join(figures_dir, f"06_pareto{suffix}.png"))
    results["path"] = path
    return results


def _train(budget: EdgeBudget, work_dir: str, say) -> tuple:
    """The classifier's run directory, and the raw test pixels and labels every artifact is scored on."""
    import keras_resnets
    from keras_resnets.data.textured_digits import load_textured_digits

    run = keras_resnets.train(budget.model, DATASET, recipe=budget.recipe, epochs=budget.epochs,
                              model_kwargs=dict(budget.model_kwargs), image_size=budget.image_size, seed=budget.seed,
                              runs_dir=work_dir, run_name="classifier", verbose=0)
    say(f"trained {budget.model} {budget.model_kwargs}: test accuracy {run.metrics['test_accuracy']:.4f} "
        f"({run.metrics['train_seconds']:.0f} s)")
    images, labels = load_textured_digits(budget.image_size).test
    if budget.test_images:
        images, labels = images[:budget.test_images], labels[:budget.test_images]
    return run, np.asarray(images, np.float32), labels


def _measure_modes(modes, run, pixels, labels, budget: EdgeBudget, work_dir: str, say) -> list:
    """One row per mode (and a first one for Keras): exported, then scored by the edge runner."""
    import keras

    from keras_resnets.export import export_model
    from keras_resnets.export.errors import ExportError
    from keras_resnets.export.optimize import FineTuneOptions

    runner_module = _edge_runner()
    keras_model = keras.models.load_model(run.paths["best_model"], compile=False)
    rows, keras_top1, sensitive = [], None, None
    for label, options in modes:
        options = dict(options)
        row = {"mode": label, "options": dict(options)}
        if options.get("keep_float") == "most_sensitive":
            if sensitive is None:
                rows.append({**row, "status": "skipped", "error": "no int8 sensitivity report to choose the layer from"})
                continue
            options["keep_float"] = row["kept_float"] = sensitive
        qat_path = options.pop("qat_path", "bridge")
        out = os.path.join(work_dir, "export", label.split(" (")[0].replace(" ", "_") + f"-{qat_path}")
        fine_tune = FineTuneOptions(qat_path=qat_path, epochs=budget.qat_epochs, max_images=budget.qat_images)
        try:
            result = export_model(run.run_dir, output_dir=out, force=True, benchmark_runs=50, fine_tune=fine_tune,
                                  **options)
        except ExportError as err:
            rows.append({**row, "status": "failed verification", "error": str(err)})
            say(f"{label}: FAILED: {err}")
            continue
        report = result.report
        if label == "int8" and (report.get("sensitivity") or {}).get("layers"):
            sensitive = report["sensitivity"]["layers"][0]["layer"]
        edge = runner_module.EdgeClassifier(str(result.artifact), num_threads=budget.threads)
        if keras_top1 is None:  # the sidecar's normalisation is the training pipeline's
            keras_row, keras_top1 = _keras_row(keras_model, run.paths["best_model"], pixels, labels,
                                               edge.metadata["input"]["normalization"], budget)
            rows.insert(0, keras_row)
        predictions = np.argmax(edge.predict(pixels), -1)
        edge.predict(pixels[:1])
        row.update(status="ok", artifact=os.path.basename(str(result.artifact)), size_bytes=_size(result.artifact),
                   top1=float((predictions == labels).mean()), agreement=float((predictions == keras_top1).mean()),
                   latency=_latency(edge.interpreter.invoke, budget.latency_rounds, budget.latency_runs),
                   runtime=f"edge runner (ai-edge-litert, {budget.threads} thread)",
                   package_check={k: (report.get("accuracy") or {}).get(k)
                                  for k in ("keras_top1", "tflite_top1", "drop_points", "prediction_agreement")},
                   precision=report.get("precision"))
        rows.append(row)
        say(f"{label}: top-1 {100 * row['top1']:.2f} %, agreement with Keras {100 * row['agreement']:.2f} %, "
            f"{row['size_bytes'] / 1024:.1f} KiB, {row['latency']['median_ms']:.3f} ms")
    return rows


def _keras_row(model, model_path, pixels, labels, norm: dict, budget: EdgeBudget) -> tuple:
    """The Keras model on the same pixels, normalised as the sidecar says: its row and its top-1 classes."""
    normalised = (pixels - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    top1 = np.argmax(model.predict(normalised, batch_size=256, verbose=0), -1)
    one = normalised[:1]
    row = {"mode": "Keras", "options": {}, "status": "ok", "top1": float((top1 == labels).mean()), "agreement": 1.0,
           "size_bytes": _size(model_path),
           "latency": _latency(lambda: model.predict_on_batch(one), budget.latency_rounds, budget.latency_runs),
           "runtime": "Keras predict_on_batch (TensorFlow)"}
    return row, top1


def plot_edge(results: dict, path: str) -> str:
    """Top-1 against size and against latency (median; bars: p10-p90), with each Pareto front."""
    from keras_resnets.experiments.figures import pyplot, save

    plt = pyplot()

    rows = [r for r in results["rows"] if r["status"] == "ok"]
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.8))
    for ax, key, xlabel in ((axes[0], "size", "size (KiB, log scale)"),
                            (axes[1], "latency", "batch-1 latency (ms, log scale; median, bar p10-p90)")):
        points = []
        for i, row in enumerate(rows):
            x = row["size_bytes"] / 1024 if key == "size" else row["latency"]["median_ms"]
            y = 100 * row["top1"]
            colour = plt.get_cmap("tab10")(i % 10)
            if key == "latency":
                lat = row["latency"]
                ax.errorbar(x, y, xerr=[[x - lat["p10_ms"]], [lat["p90_ms"] - x]], fmt="o", color=colour, capsize=3)
            else:
                ax.scatter(x, y, color=colour)
            ax.annotate(f"{row['mode']}\n(agrees {100 * row['agreement']:.1f} %)", (x, y), fontsize=7,
                        xytext=(4, 4 if i % 2 else -20), textcoords="offset points")
            points.append((x, y))
        frontier, best = [], -1.0
        for x, y in sorted(points):  # nothing smaller / faster is at least as accurate
            if y > best:
                frontier.append((x, y))
                best = y
        ax.plot(*zip(*frontier), "k--", lw=1, label="Pareto front")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"top-1 % on {results['test_images']} test images (one image: "
                      f"{100 / results['test_images']:.2f} points)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    classifier = results["classifier"]
    fig.suptitle(f"{results['title']}\n{classifier['model']} {classifier['kwargs']}, {results['dataset']} "
                 f"{'x'.join(map(str, results['protocol']['budget']['image_size']))}, {results['cpu']}", fontsize=9)
    return save(fig, path, dpi=100)
