"""CPU training throughput in one run: our models on every Keras backend against the same nets in PyTorch.

Contenders (each in its own child process, since TensorFlow reads ``TF_ENABLE_ONEDNN_OPTS`` at import
and the Keras backend is fixed at import):

* ``keras-tf``         Keras on TensorFlow, oneDNN kernels off (``TF_ENABLE_ONEDNN_OPTS=0``)
* ``keras-tf-onednn``  Keras on TensorFlow, oneDNN kernels on (``TF_ENABLE_ONEDNN_OPTS=1``)
* ``keras-jax``        Keras on JAX (the train step is XLA-compiled, as ``xla="auto"`` does)
* ``keras-torch``      Keras on PyTorch (eager, as Keras' default for that backend)
* ``torch``            PyTorch eager, channels-last (``benchmarks/gpu/torch_models.py``, layer for layer)
* ``torch-compile``    the same PyTorch net under ``torch.compile``

Every contender trains the same network (same parameter count, checked) with SGD, momentum 0.9,
float32, sparse softmax cross-entropy, on one fixed random batch held in memory (so the figure is
the training step, not the input pipeline). The Keras contenders train as ``keras-resnets train`` does
(on TensorFlow, BN through the fused kernel: ``keras_resnets.training.fused_batch_norm``).

Fair under load: every child is pinned to the same ``--threads`` cores (``sched_setaffinity``) and told
that thread count (``OMP_NUM_THREADS``, PyTorch's ``set_num_threads``, TensorFlow's intra-op pool, one
inter-op thread as PyTorch eager runs one op at a time; XLA sizes its pool from the affinity). PyTorch's
OpenMP threads spin at barriers; on a shared, loaded machine that made 2-thread PyTorch 3.5x slower (106
vs 372 images/s, cifar_resnet20 12²), so the children run with ``OMP_WAIT_POLICY=PASSIVE`` unless it is
set (``--omp-wait-policy``). After each contender has compiled/warmed up, the parent runs short rounds; in
each round every contender trains ``--steps`` steps in turn (order reversed every other round), so load
on the shared machine hits all of them alike. The 1-minute load average is read around every timing; a
round during which it moved by more than ``--load-tolerance`` (relative) is flagged and left out of the
medians (all rounds are kept when fewer than 3 are clean). Reported: median images/s with min–max over
the clean rounds, the ratio of each median to PyTorch eager, and the load; beside it, images per second of
the child's CPU time (all its threads): on a busy machine the wall clock measures the scheduler too, the
CPU time much less (it still counts threads spinning at barriers). Results:
``benchmarks/results/bench_cpu_training.json``.

    .venv/bin/python benchmarks/bench_cpu_training.py            # the two README workloads
    .venv/bin/python benchmarks/bench_cpu_training.py --quick    # fewer rounds, a few minutes
    .venv/bin/python benchmarks/bench_cpu_training.py --threads 1   # one core each: robust on a busy machine
    .venv/bin/python benchmarks/bench_cpu_training.py --workload cifar_resnet20:16:128 \\
        --workload cifar_resnet56:12:128 --only keras-tf-onednn,keras-jax,keras-torch,torch

Needs ``torch`` (a test requirement in ``requirements.lock``, not a dependency of the package).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from keras_resnets.calibration import cpu_name  # noqa: E402  (imports nothing heavy)

RESULTS = HERE / "results" / "bench_cpu_training.json"

# contender -> environment of its child process
CONTENDERS = {
    "keras-tf": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "0"},
    "keras-tf-onednn": {"KERAS_BACKEND": "tensorflow", "TF_ENABLE_ONEDNN_OPTS": "1"},
    "keras-jax": {"KERAS_BACKEND": "jax"},
    "keras-torch": {"KERAS_BACKEND": "torch"},
    "torch": {},
    "torch-compile": {},
}
BASELINE = "torch"
DEFAULT_WORKLOADS = ("cifar_resnet20:32:128", "resnet50:64:32")


def classes_of(model: str) -> int:
    return 1000 if model.startswith("resnet") else 10


# --------------------------------------------------------------------------------------------- workers

def keras_trainer(model_name: str, size: int, batch: int):
    """A function ``steps -> seconds`` training our model on the current Keras backend."""
    import keras
    import numpy as np

    import keras_resnets
    from keras_resnets.training.fused_batch_norm import use_fused_batch_norm

    shape = (size, size, 3)
    model = keras_resnets.create_model(model_name, input_shape=shape, classes=classes_of(model_name),
                                       classifier_activation=None)
    use_fused_batch_norm(model)  # as compile_model does for training (TensorFlow only)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=keras.backend.backend() == "jax")  # as resolve_jit_compile("auto") on a CPU
    rng = np.random.default_rng(0)
    x = keras.ops.convert_to_tensor(rng.normal(size=(batch, *shape)).astype("float32"))
    y = keras.ops.convert_to_tensor(rng.integers(0, classes_of(model_name), size=(batch,)).astype("int32"))

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(x, y)
        float(loss)  # the last step has finished
        return time.perf_counter() - start

    return run, model.count_params()


def torch_trainer(model_name: str, size: int, batch: int, compiled: bool):
    import torch

    sys.path.insert(0, str(HERE / "gpu"))
    import torch_models

    builders = {"resnet50": lambda classes: torch_models.resnet50_v1(classes)}
    depth = int("".join(c for c in model_name if c.isdigit()) or 0)
    if model_name.startswith("cifar_resnet"):
        net = torch_models.cifar_resnet(depth, classes_of(model_name))
    elif model_name.startswith("preact_resnet"):
        net = torch_models.preact_resnet(depth, classes_of(model_name))
    elif model_name in builders:
        net = builders[model_name](classes_of(model_name))
    else:
        raise SystemExit(f"no PyTorch counterpart of {model_name!r}; allowed: cifar_resnet<6n+2>, "
                         f"preact_resnet<9n+2>, {', '.join(builders)}")
    params = sum(p.numel() for p in net.parameters()) + sum(
        b.numel() for n, b in net.named_buffers() if not n.endswith("num_batches_tracked"))
    net = net.to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    forward = torch.compile(net) if compiled else net
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, size, size, generator=generator).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes_of(model_name), (batch,), generator=generator)

    def run(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(forward(x), y)
            loss.backward()
            optimizer.step()
        float(loss)
        return time.perf_counter() - start

    return run, params


def limit_threads(contender: str, threads: int) -> None:
    """Pin this process to ``threads`` cores and size every framework's pools to match (before importing them)."""
    cores = sorted(os.sched_getaffinity(0))[:threads]
    os.sched_setaffinity(0, cores)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if CONTENDERS[contender].get("KERAS_BACKEND") == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    if contender.startswith("torch") or contender == "keras-torch":
        import torch

        torch.set_num_threads(threads)


def worker(contender: str, model_name: str, size: int, batch: int, warmup: int, threads: int) -> None:
    """Child process: build, warm up, then answer each ``steps`` line on stdin with images/s."""
    limit_threads(contender, threads)
    if contender.startswith("keras"):
        run, params = keras_trainer(model_name, size, batch)
    else:
        run, params = torch_trainer(model_name, size, batch, compiled=contender == "torch-compile")
    start = time.perf_counter()
    run(warmup)
    print(json.dumps({"ready": True, "params": int(params), "warmup_s": time.perf_counter() - start}), flush=True)
    for line in sys.stdin:
        steps = int(line)
        cpu = time.process_time()
        wall = run(steps)
        print(json.dumps({"images_per_s": steps * batch / wall,
                          "images_per_cpu_s": steps * batch / (time.process_time() - cpu)}), flush=True)


# --------------------------------------------------------------------------------------------- parent

class Child:
    def __init__(self, contender: str, workload: str, warmup: int, omp_wait_policy: str, threads: int):
        model, size, batch = workload.split(":")
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **CONTENDERS[contender]}
        env.setdefault("OMP_WAIT_POLICY", omp_wait_policy)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
        self.name, self.batch = contender, int(batch)
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--worker", contender, "--model", model, "--size", size,
             "--batch", batch, "--warmup", str(warmup), "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited (rc {self.proc.wait()}); rerun it alone with --only to see why")
        return json.loads(line)

    def time(self, steps: int) -> dict:
        self.proc.stdin.write(f"{steps}\n")
        self.proc.stdin.flush()
        return self.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(timeout=60)


def measure(workload: str, contenders: list, rounds: int, steps: int, warmup: int, omp: str, threads: int,
            load_tolerance: float) -> dict:
    children, info, loads, flagged = [], {}, [], []
    try:
        for name in contenders:  # one at a time: a child warming up must not share the cores with another
            child = Child(name, workload, warmup, omp, threads)
            info[name] = child.read()
            children.append(child)
            print(f"  {name:<16} ready ({info[name]['params']:,} parameters, warm-up {info[name]['warmup_s']:.0f} s)",
                  flush=True)
        params = {info[c]["params"] for c in contenders}
        if len(params) != 1:
            raise RuntimeError(f"the contenders train different networks: parameters {info}")
        rates, per_cpu = {c.name: [] for c in children}, {c.name: [] for c in children}
        for r in range(rounds):
            seen = [os.getloadavg()[0]]
            for child in children if r % 2 == 0 else reversed(children):
                timing = child.time(steps)
                rates[child.name].append(timing["images_per_s"])
                per_cpu[child.name].append(timing["images_per_cpu_s"])
                seen.append(os.getloadavg()[0])
            loads.append((min(seen), max(seen)))
            moved = (max(seen) - min(seen)) / max(min(seen), 1.0) > load_tolerance
            flagged.append(moved)
            print(f"  round {r + 1}/{rounds}: " + ", ".join(f"{n} {v[-1]:.1f}" for n, v in rates.items())
                  + f"  (load {min(seen):.1f}–{max(seen):.1f}{', FLAGGED: load moved' if moved else ''})", flush=True)
    finally:
        for child in children:
            child.close()
    clean = [r for r in range(rounds) if not flagged[r]]
    if len(clean) < 3:
        print(f"  only {len(clean)} rounds with a steady load: the medians use all {rounds}", flush=True)
        clean = list(range(rounds))
    result = {}
    for name, v in rates.items():
        kept = [v[r] for r in clean]
        result[name] = {"median": statistics.median(kept), "min": min(kept), "max": max(kept), "rounds": v,
                        "images_per_cpu_s": statistics.median(per_cpu[name][r] for r in clean),
                        "images_per_cpu_s_rounds": per_cpu[name]}
    if BASELINE in result:
        for name in rates:
            row = result[name]
            row["ratio_to_torch_eager"] = row["median"] / result[BASELINE]["median"]
            row["cpu_ratio_to_torch_eager"] = row["images_per_cpu_s"] / result[BASELINE]["images_per_cpu_s"]
    result["_rounds"] = {"load_min_max": loads, "flagged": flagged, "used": clean}
    return result


def table(results: dict, contenders: list) -> str:
    head = "| workload (images/s) | " + " | ".join(contenders) + " |"
    lines = [head, "|" + "---|" * (len(contenders) + 1)]
    for workload, rows in results.items():
        model, size, batch = workload.split(":")
        loads = [x for pair in rows["_rounds"]["load_min_max"] for x in pair]
        cells = []
        for c in contenders:
            row = rows[c]
            ratio = f" **{row['ratio_to_torch_eager']:.2f}×**" if "ratio_to_torch_eager" in row else ""
            cpu_ratio = f" {row['cpu_ratio_to_torch_eager']:.2f}×" if "cpu_ratio_to_torch_eager" in row else ""
            cells.append(f"{row['median']:.1f} [{row['min']:.1f}–{row['max']:.1f}]{ratio}; "
                         f"{row['images_per_cpu_s']:.1f}/CPU-s{cpu_ratio}")
        lines.append(f"| {model} {size}², batch {batch} (load {min(loads):.0f}–{max(loads):.0f}, "
                     f"{len(rows['_rounds']['used'])}/{len(rows['_rounds']['flagged'])} rounds) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", action="append", metavar="MODEL:SIZE:BATCH",
                        help=f"repeatable (default: {' and '.join(DEFAULT_WORKLOADS)})")
    parser.add_argument("--only", help=f"comma-separated contenders (default all: {','.join(CONTENDERS)})")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5, help="training steps per contender per round")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps after building (compilation)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 3 steps")
    parser.add_argument("--omp-wait-policy", choices=("PASSIVE", "ACTIVE"), default="PASSIVE",
                        help="OMP_WAIT_POLICY of the children unless set (default PASSIVE: on a loaded machine "
                             "OpenMP's spinning barrier made 2-thread PyTorch 3.5x slower)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(),
                        help="cores (and threads) every contender gets (default: all cores)")
    parser.add_argument("--load-tolerance", type=float, default=0.3,
                        help="flag a round whose 1-minute load average moved by more than this share (default 0.3)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.model, args.size, args.batch, args.warmup, args.threads)

    contenders = args.only.split(",") if args.only else list(CONTENDERS)
    unknown = [c for c in contenders if c not in CONTENDERS]
    if unknown:
        raise SystemExit(f"unknown contender {unknown[0]!r}; allowed: {', '.join(CONTENDERS)}")
    if args.quick:
        args.rounds, args.steps = 3, 3
    workloads = args.workload or list(DEFAULT_WORKLOADS)
    load_before = os.getloadavg()
    print(f"CPU: {cpu_name()}; load average {load_before[0]:.1f} at start; "
          f"{args.rounds} rounds x {args.steps} steps, contenders alternated, {args.threads} thread(s) each, "
          f"niceness {os.nice(0)}", flush=True)
    results = {}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    for workload in workloads:
        print(f"{workload}:", flush=True)
        results[workload] = measure(workload, contenders, args.rounds, args.steps, args.warmup, args.omp_wait_policy,
                                    args.threads, args.load_tolerance)
        args.output.write_text(json.dumps({  # after each workload: a run stopped early keeps what it measured
            "cpu": cpu_name(), "load_average_start": load_before[0], "load_average_end": os.getloadavg()[0],
            "rounds": args.rounds, "steps": args.steps, "threads": args.threads, "niceness": os.nice(0),
            "load_tolerance": args.load_tolerance,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", args.omp_wait_policy),
            "optimizer": "SGD momentum 0.9, lr 0.01, float32",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "results": results}, indent=1) + "\n")
    print(table(results, contenders))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
