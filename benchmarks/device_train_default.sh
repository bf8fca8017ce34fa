#!/usr/bin/env bash
# GPU machine: train (or resume) the HNDesc r2d2 model on .carry/shard-a for at most LIMIT seconds;
# the run folder comes back through $OUT (checkpoints are atomic, so the time limit never corrupts them).
# Usage: bash benchmarks/device_train_default.sh LIMIT [RUN_DIR_TO_RESUME]
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LIMIT=${1:-540}
RESUME=""
if [ -n "${2:-}" ]; then mkdir -p /tmp/run && cp -r "$2"/. /tmp/run/ && RESUME=--resume; fi
timeout "$LIMIT" python3 -m selfdesc train --config configs/hndesc_r2d2.yaml --images .carry/shard-a --out /tmp/run \
  --device cuda $RESUME train.progress=false train.log_every=100 train.checkpoint_every=500
echo "exit $? (124 = stopped by the time limit)"
mkdir -p $OUT/checkpoints && cp /tmp/run/checkpoints/last.pt $OUT/checkpoints/ && cp /tmp/run/metrics.csv /tmp/run/config.yaml $OUT/
tail -3 /tmp/run/metrics.csv | cut -d, -f1-7
