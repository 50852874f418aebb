#!/usr/bin/env bash
# Fill .whl/ with the wheels a GPU device machine lacks for running keras_resnets on JAX.
#
# The device machine (see docs/distributed.md, "Measuring on a GPU") has Python 3.12, JAX, PyTorch,
# numpy, h5py, rich, absl-py, ml-dtypes, ... but no Keras and no network. This script runs on a
# machine that reaches the package index and downloads, for CPython 3.12 on manylinux x86_64:
#   keras == the version installed in the project's venv (requirements.lock), and every requirement
#   of it (recursively) that is not in DEVICE_HAS below.
# Each wheel is downloaded with --no-deps, exactly one version per package. The folder travels to
# the device with the working tree (`carry: [".whl"]`), so its size is printed and checked.
#
#   bash benchmarks/gpu/fetch_wheels.sh            # from the repository root
#   PYTHON=/path/to/python bash benchmarks/gpu/fetch_wheels.sh
set -euo pipefail

PYTHON=${PYTHON:-/work/main/.venv/bin/python}
DEST=${DEST:-.whl}
LIMIT_MIB=${LIMIT_MIB:-60}
# Python packages already on the device image ("cuda"; KINDS.md package list), lower case, '-' form.
DEVICE_HAS="absl-py h5py ml-dtypes numpy packaging rich typing-extensions markdown-it-py pygments mdurl
jax jaxlib scipy opt-einsum matplotlib pillow scikit-learn tensorboard protobuf grpcio six"

[ -f setup.py ] && [ -d keras_resnets ] || { echo "fetch_wheels: error: run from the repository root" >&2; exit 2; }
grep -qx '/.whl/' .gitignore .git/info/exclude 2>/dev/null \
  || { echo "fetch_wheels: error: .whl/ is not git-ignored (add '/.whl/' to .gitignore)" >&2; exit 2; }

installed_version() {  # version of package $1 in $PYTHON's environment
  "$PYTHON" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p'
}
normalise() { echo "$1" | tr 'A-Z_.' 'a-z--'; }

download() {  # download package $1 at version $2 for the device's Python and platform
  "$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$DEST" "$1==$2"
}

requirements() {  # non-extra Requires-Dist names of the downloaded wheel of package $1
  local wheel
  wheel=$(ls "$DEST"/"$(echo "$1" | tr '-' '_')"-*.whl "$DEST"/"$1"-*.whl 2>/dev/null | head -1)
  [ -n "$wheel" ] || { echo "fetch_wheels: error: no wheel of $1 in $DEST" >&2; exit 1; }
  unzip -p "$wheel" '*.dist-info/METADATA' | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' \
    | sed -E 's/[ ;<>=!~(\[].*//' || true
}

rm -rf "$DEST"; mkdir -p "$DEST"
queue=(keras); done_list=" "
while [ ${#queue[@]} -gt 0 ]; do
  name=$(normalise "${queue[0]}"); queue=("${queue[@]:1}")
  case "$done_list" in *" $name "*) continue ;; esac
  done_list="$done_list$name "
  if echo " $(echo $DEVICE_HAS) " | grep -q " $name "; then
    echo "  $name: already on the device"; continue
  fi
  version=$(installed_version "$name")
  [ -n "$version" ] || { echo "fetch_wheels: error: $name is not installed in $PYTHON's environment" >&2; exit 1; }
  download "$name" "$version"
  echo "  $name==$version: downloaded"
  for dep in $(requirements "$name"); do queue+=("$dep"); done
done

count=$(ls "$DEST"/*.whl | wc -l)
wheels_kib=$(du -sk "$DEST" | cut -f1)
tree_kib=$(git ls-files -z --cached --others --exclude-standard | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
total_mib=$(( (wheels_kib + tree_kib + 1023) / 1024 ))
ls -1 "$DEST"
echo "fetch_wheels: $count wheels, $((wheels_kib / 1024)).$(( (wheels_kib % 1024) * 10 / 1024 )) MiB in $DEST;" \
     "with the working tree ($((tree_kib / 1024)) MiB) about $total_mib MiB travel (limit ${LIMIT_MIB} MiB)"
if [ "$total_mib" -gt "$LIMIT_MIB" ]; then
  echo "fetch_wheels: error: $total_mib MiB would travel, over ${LIMIT_MIB} MiB" >&2; exit 1
fi
