#!/usr/bin/env bash
# Train a model on a GPU machine lent for a fixed time, from nothing:
# generate mocks with every core, train within a time limit, calibrate, and
# leave the model and the logs in $OUT (the weights cut into parts of 15 MB,
# for channels that limit a file's size: `cat weights.part* > model.safetensors`
# joins them byte for byte).
#
#   OUT=/some/dir bash scripts/train_on_gpu.sh N MOCK_SECONDS TRAIN_SECONDS \
#       [picasso-train fit options...]
#
# Packages the machine lacks can travel as wheels in .whl/ (installed first).
# Mock generation stops at MOCK_SECONDS; the complete shards made by then are
# kept (the dataset's n is cut to them) and training takes --time-limit
# TRAIN_SECONDS. SEED (41) and SIZE (128) choose the mocks; SIZE larger than
# the model's input with --crop trains on windows at varied offsets.
set -euo pipefail
export PYTHONUNBUFFERED=1
n=$1 mock_seconds=$2 train_seconds=$3
shift 3
out=${OUT:?set OUT to the directory for the model and logs}
work=${WORK:-/tmp/picasso-gpu}
seed=${SEED:-41}
size=${SIZE:-128}
shard=64

export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
cores=$(nproc)
nvidia-smi -L || true
train() { python3 -m picasso_astro.training.cli "$@"; }
started=$SECONDS

timeout -s KILL "$mock_seconds" python3 -m picasso_astro.training.cli mocks \
    --n "$n" --seed "$seed" --size "$size" --shard-size $shard --workers "$cores" \
    -o "$work/mocks" --quiet || echo "mocks: stopped at ${mock_seconds} s"
pkill -9 -f "picasso_astro.training.cli mocks" || true
python3 - "$work/mocks" $shard <<'EOF'
"""Keep the complete shards before the first missing one; cut n to them."""
import json, sys
from pathlib import Path

import h5py

directory, size = Path(sys.argv[1]), int(sys.argv[2])
manifest = json.loads((directory / "dataset.json").read_text())
n, k = manifest["n"], 0
while k * size < n:
    path = directory / f"shard-{k:05d}.h5"
    try:
        with h5py.File(path, "r") as f:
            if int(f.attrs["count"]) != min(size, n - k * size):
                break
    except OSError:
        break
    k += 1
for path in directory.glob("shard-*.h5"):
    if int(path.stem.split("-")[1]) >= k:
        path.unlink()
for path in directory.glob(".shard-*.tmp"):
    path.unlink()
manifest["n"] = min(n, k * size)
(directory / "dataset.json").write_text(json.dumps(manifest, indent=2) + "\n")
print(f"mocks: {manifest['n']} galaxies in {k} shards")
EOF
echo "mocks done after $((SECONDS - started)) s"

train fit --data "$work/mocks" --out "$work/run" --device "${DEVICE:-cuda}" \
    --workers $((cores > 2 ? cores - 2 : 0)) --in-memory --time-limit "$train_seconds" --quiet "$@"
echo "training done after $((SECONDS - started)) s"

split -b 15000000 -d "$work/run/model/model.safetensors" "$out/weights.part"
cp "$work/run/model/config.json" "$work/run/log.csv" "$out/"
ls -l "$out"
