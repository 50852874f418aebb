#!/usr/bin/env bash
# GPU measurements of docs/distributed.md ("Measuring on a GPU"), in one or two calls of the device
# machine (Python 3.12, JAX with CUDA, PyTorch, torchvision; no TensorFlow, no Keras, no network).
#
# Before: `bash benchmarks/gpu/fetch_wheels.sh` in the root of the checkout whose tree the device tool
# sends, on a machine with the package index (fills the git-ignored .whl/ with keras and the
# dependencies the device lacks, about 3 MiB). Then the device tool's run, two calls (each well inside
# 10 minutes; what the first wrote under $OUT comes back before the second empties it):
#   run(command="bash benchmarks/gpu/device_run.sh call1", carry=[".whl"], timeout_s=600)
#       # env, bench-a (resnet50, cifar_resnet56), train
#   run(command="bash benchmarks/gpu/device_run.sh call2", carry=[".whl"], timeout_s=600)
#       # env, bench-b (preact_resnet164, densenet121), diagnose
# or everything in one call, each phase getting what time is left (later phases may be skipped):
#   run(command="bash benchmarks/gpu/device_run.sh all", carry=[".whl"], timeout_s=600)
# No `kind` needed (an H100 first, an H200 if none): the device's name is in every result; compare
# ratios measured on the same device only.
# Phases can also be named one by one: env bench-a bench-b diagnose train.
#
# Phases (each under `timeout`; a failed or timed-out phase is reported and the next one runs):
#   env       nvidia-smi, Python/JAX/Keras/PyTorch versions, a one-step Keras-on-JAX smoke test
#   bench-a   bench_gpu_throughput.py --only resnet50,cifar_resnet56   -> $OUT/gpu_throughput_a.json
#   bench-b   bench_gpu_throughput.py --only preact_resnet164,densenet121 -> $OUT/gpu_throughput_b.json
#   diagnose  bench_gpu_throughput.py --only resnet50 --diagnose --skip-torch (jax.profiler trace, XLA
#             HLO dump; DIAG_TORCH=1 also times PyTorch again and its forward pass)
#             -> $OUT/gpu_diagnose.json, $OUT/diagnose_dumps.tgz
#   train     keras-resnets train --model cifar_resnet20 --dataset digits --epochs 15 on KERAS_BACKEND=jax
#             -> $OUT/train/{metrics.json,history.csv,curves.png}
# Everything printed also goes to $OUT/device_run.log; the last lines are the phase table and the
# merged summary. At most 8 files come back from $OUT (here: 8 with `all`), 2 folders deep.
#
# Local check without a GPU: [SKIP_WHEELS=1] PYTHON=/path/to/python TINY=1 OUT=/tmp/out SITE=/tmp/x bash ... all
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
OUT=${OUT:-/tmp/device_out}
WORK=${WORK:-/tmp/device_work}
DEADLINE=${DEADLINE:-570}   # seconds for the whole script (the call's limit is 600)
TINY=${TINY:-}
SITE=${SITE:-/tmp/site}     # where the carried wheels are installed
mkdir -p "$OUT" "$WORK"
export PY OUT WORK TINY PYTHONUNBUFFERED=1 KERAS_BACKEND=jax TF_CPP_MIN_LOG_LEVEL=2
INNER=
if [ "${1:-}" = "__inner" ]; then INNER=1; shift; else exec > >(tee -a "$OUT/device_run.log") 2>&1; TEE_PID=$!; fi
export DIAG_TORCH=${DIAG_TORCH:-}

phases=()
for arg in $([ -n "$INNER" ] || echo "${@:-all}"); do
  case "$arg" in
    all) phases+=(env bench-a train bench-b diagnose) ;;
    call1) phases+=(env bench-a train) ;;
    call2) phases+=(env bench-b diagnose) ;;
    env|bench-a|bench-b|diagnose|train) phases+=("$arg") ;;
    *) echo "device_run: error: unknown phase '$arg'; allowed: all call1 call2 env bench-a bench-b diagnose train"
       exit 2 ;;
  esac
done
# Longest each phase may take, and the least it is worth starting with.
declare -A MAX=([env]=75 [bench-a]=330 [bench-b]=360 [diagnose]=240 [train]=180)
declare -A MIN=([env]=30 [bench-a]=120 [bench-b]=150 [diagnose]=100 [train]=60)
declare -A RESULT=()

if [ -n "$INNER" ]; then
  :  # the outer call installed the wheels and exported PYTHONPATH
elif [ -z "${SKIP_WHEELS:-}" ]; then
  ls .whl/*.whl >/dev/null 2>&1 || { echo "device_run: error: no .whl/*.whl: run fetch_wheels.sh here and carry .whl"; exit 2; }
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || { echo "device_run: error: installing .whl/*.whl failed"; exit 1; }
  export PYTHONPATH=$SITE:$ROOT
else
  export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
fi
BENCH=(benchmarks/bench_gpu_throughput.py)
[ -n "$TINY" ] && BENCH+=(--tiny)

run_phase() {  # name, [args]: run phase_<name> in a child of this script under the time left
  local name=$1; shift
  local left limit started rc
  left=$((DEADLINE - SECONDS))
  # keep the least each later phase needs
  local reserve=0 later=0
  for p in "${phases[@]}"; do
    if [ "$later" = 1 ]; then reserve=$((reserve + ${MIN[$p]})); fi
    [ "$p" = "$name" ] && later=1
  done
  limit=$(( left - reserve < ${MAX[$name]} ? left - reserve : ${MAX[$name]} ))
  if [ "$limit" -lt "${MIN[$name]}" ]; then
    echo "=== $name: skipped, ${left} s left (${reserve} s kept for later phases)"; RESULT[$name]="skipped (no time)"; return
  fi
  echo "=== $name: start $(date -u +%T), limit ${limit} s"
  started=$SECONDS
  timeout -k 15 "$limit" bash "$ROOT/benchmarks/gpu/device_run.sh" __inner "phase_${name//-/_}" "$@"
  rc=$?
  local took=$((SECONDS - started))
  case $rc in
    0) RESULT[$name]="ok, ${took} s" ;;
    124|137) RESULT[$name]="TIMED OUT after ${took} s (limit ${limit} s)" ;;
    *) RESULT[$name]="FAILED (exit $rc) after ${took} s" ;;
  esac
  echo "=== $name: ${RESULT[$name]}"
}

phase_env() {
  nvidia-smi || echo "(no nvidia-smi)"
  $PY - <<'EOF'
import importlib, platform, time
print("python", platform.python_version())
for name in ("jax", "jaxlib", "keras", "numpy", "optree", "ml_dtypes", "torch", "torchvision", "tensorflow"):
    try:
        module = importlib.import_module(name)
        print(f"{name} {getattr(module, '__version__', '?')}  ({module.__file__})")
    except Exception as err:
        print(f"{name}: not importable ({type(err).__name__}: {err})")
import jax
print("jax devices:", jax.devices())
import keras, numpy as np
import keras_resnets
started = time.perf_counter()
keras.config.set_dtype_policy("mixed_bfloat16")
model = keras_resnets.create_model("cifar_resnet20", depth=8, classes=10, classifier_activation=None)
model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
x = np.random.default_rng(0).standard_normal((32, 32, 32, 3)).astype("float32")
y = np.arange(32) % 10
print(f"smoke: keras_resnets cifar_resnet20 (depth 8) train_on_batch on {keras.backend.backend()}: "
      f"loss {model.train_on_batch(x, y):.3f}, {time.perf_counter() - started:.1f} s with compilation")
EOF
}

phase_bench_a() {
  $PY "${BENCH[@]}" --only resnet50,cifar_resnet56 --json "$OUT/gpu_throughput_a.json"
}

phase_bench_b() {
  $PY "${BENCH[@]}" --only preact_resnet164,densenet121 --json "$OUT/gpu_throughput_b.json"
}

phase_diagnose() {
  rm -rf "$WORK/trace" "$WORK/xla"
  # PyTorch's resnet50 was timed by bench-a; DIAG_TORCH=1 times it again here and adds its forward pass.
  $PY "${BENCH[@]}" --only resnet50 --diagnose --trace "$WORK/trace" --xla-dump "$WORK/xla" \
      $([ -n "${DIAG_TORCH:-}" ] || echo --skip-torch) --json "$OUT/gpu_diagnose.json"
}

pack_dumps() {  # the trace and the training modules' HLO text, in one file under 15 MiB
  local all="$WORK/dump_files" limit=$((15 * 1024 * 1024)) dropped=""
  (cd "$WORK" && { find trace -type f 2>/dev/null
                   find xla -type f \( -name '*train_step*optimizations.txt' -o -name '*keras_forward*optimizations.txt' \
                        -o -name '*train_step*memory-usage-report.txt' \) 2>/dev/null; } > "$all")
  [ -s "$all" ] || { echo "diagnose: no trace or dump files"; return; }
  cp "$all" "$all.keep"
  # Largest and least needed first: the raw xplane (trace.json.gz holds the same timeline), HLO before
  # optimisation, then all HLO.
  for drop in '' 'xplane.pb$' 'before_optimizations' '^xla/' '.'; do
    if [ -n "$drop" ]; then grep -v -- "$drop" "$all.keep" > "$all.next"; mv "$all.next" "$all.keep"; dropped="$dropped $drop"; fi
    rm -f "$OUT/diagnose_dumps.tgz"
    [ -s "$all.keep" ] || break
    tar -C "$WORK" -czf "$OUT/diagnose_dumps.tgz" -T "$all.keep"
    [ "$(stat -c %s "$OUT/diagnose_dumps.tgz")" -le "$limit" ] && break
  done
  if [ -f "$OUT/diagnose_dumps.tgz" ] && [ "$(stat -c %s "$OUT/diagnose_dumps.tgz")" -le "$limit" ]; then
    echo "diagnose: $(wc -l < "$all.keep") of $(wc -l < "$all") files in diagnose_dumps.tgz" \
         "($(du -h "$OUT/diagnose_dumps.tgz" | cut -f1))${dropped:+; left out to stay under 15 MiB:$dropped}"
  else
    rm -f "$OUT/diagnose_dumps.tgz"
    echo "diagnose: trace and dumps too large to bring back (over 15 MiB even alone); nothing packed"
  fi
}

phase_train() {
  local epochs=15
  [ -n "$TINY" ] && epochs=1
  rm -rf "$WORK/runs"
  $PY -m keras_resnets.cli train --model cifar_resnet20 --dataset digits --epochs "$epochs" \
      --runs-dir "$WORK/runs" --run-name gpu-digits --quiet
}

collect_train() {  # what the training wrote, whether it finished or not
  mkdir -p "$OUT/train"
  local run="$WORK/runs/gpu-digits"
  for f in metrics.json history.csv curves.png; do
    if [ -f "$run/$f" ]; then cp "$run/$f" "$OUT/train/"; else echo "train: no $f in $run"; fi
  done
  [ -f "$run/metrics.json" ] && { echo "train: metrics.json:"; cat "$run/metrics.json"; echo; }
  ls -R "$run" 2>/dev/null | head -30
}

if [ -n "$INNER" ]; then
  "$@"
  exit $?
fi

echo "device_run: phases ${phases[*]}; deadline ${DEADLINE} s; $(date -u +%FT%TZ)"
for phase in "${phases[@]}"; do
  case $phase in
    diagnose) run_phase diagnose; pack_dumps ;;
    train) run_phase train; collect_train ;;
    *) run_phase "$phase" ;;
  esac
done

echo
echo "device_run: phases after $SECONDS s"
for phase in "${phases[@]}"; do printf '  %-9s %s\n' "$phase" "${RESULT[$phase]:-not run}"; done
results=$(ls "$OUT"/gpu_throughput_*.json "$OUT"/gpu_diagnose.json 2>/dev/null)
if [ -n "$results" ]; then
  # shellcheck disable=SC2086
  $PY benchmarks/bench_gpu_throughput.py --merge $results 2>&1 | tail -40
fi
echo "device_run: \$OUT holds: $(cd "$OUT" && find . -type f | sort | tr '\n' ' ')"
exec >&- 2>&-
wait "$TEE_PID" 2>/dev/null  # the log is complete before the call returns
