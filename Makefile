# The two commands of the README. Both create (or reuse) .venv from requirements.lock.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# MediaPipe Tasks (the export tests' on-device client) in an environment of its own: its absl-py
# pin conflicts with requirements.lock's. The tests call it in a subprocess.
MP_VENV  ?= .venv-mediapipe
MP_STAMP := $(MP_VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONUNBUFFERED = 1

.PHONY: demo test test-tf test-jax test-torch venv mediapipe-venv bench notebooks clean

venv: $(STAMP)

$(STAMP): requirements.lock setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $(STAMP)

mediapipe-venv: $(MP_STAMP)

$(MP_STAMP): requirements-mediapipe.lock
	test -x $(MP_VENV)/bin/python || $(PYTHON) -m venv $(MP_VENV)
	$(MP_VENV)/bin/python -m pip install -q -r requirements-mediapipe.lock
	touch $(MP_STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# Whole suite on the TensorFlow backend, then the backend-agnostic model tests on JAX, then a small
# subset (marker `torch`) on PyTorch.
# --dist worksteal: a worker that runs out of tests takes queued ones from the other, so a long
# test near the end of a worker's queue does not leave the second core idle.
test: test-tf test-jax test-torch

test-tf: $(STAMP) $(MP_STAMP)
	KERAS_BACKEND=tensorflow KERAS_RESNETS_MEDIAPIPE_PYTHON=$(MP_VENV)/bin/python $(PY) -m pytest -n 2 --dist worksteal -q --durations=15 tests

# XLA's CPU backend at optimisation level 0: the model tests compile thousands of small ops once
# each (every weight initialiser of every shape), and compiling them unoptimised is ~5x faster.
test-jax: $(STAMP)
	KERAS_BACKEND=jax XLA_FLAGS=--xla_backend_optimization_level=0 \
	  $(PY) -m pytest -n 2 --dist worksteal -q --durations=10 -m "not tf_only and not backend_independent" tests/models

# Keras' torch backend: the tests marked `torch` (train/save/load, the deepest nets' finite outputs).
test-torch: $(STAMP)
	KERAS_BACKEND=torch $(PY) -m pytest -n 2 --dist worksteal -q --durations=5 -m torch tests/models

# Re-execute the reproduction notebooks in full and write their outputs back (about an hour per
# experiment on two CPU cores; the experiments resume from notebooks/results/*.json), then regenerate
# the README's Findings table from those results. `make test` executes them in SMALL mode (tests/notebooks).
# oneDNN: the fastest measured setting for these small networks on CPU.
notebooks: $(STAMP)
	KERAS_BACKEND=tensorflow TF_ENABLE_ONEDNN_OPTS=1 $(PY) notebooks/run_notebooks.py --in-place --timeout 14400
	$(PY) -m keras_resnets.experiments.report --readme README.md

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) $(MP_VENV) build *.egg-info
