#!/usr/bin/env bash
# GPU machine: train the residual-descriptor model (configs/residual_sift.yaml) and its three
# ablations (CNN only, f(g) only, half-width CNN) side by side on one GPU, on .carry/shard-a, each
# for at most LIMIT seconds or STEPS steps, validating every VAL steps (the trainer's synthetic MMA@3
# validation on VAL_IMAGES, default .carry/synth-base: carry it).
# SIFT runs on the CPU: each run uses 3 loader workers and 3 SIFT threads (16 cores in all).
#
# Back in $OUT (6 files, each < 16 MiB, about 55 MB in all): <config>.tar per run
# (checkpoints/last.pt with the optimizer, for --resume; metrics.csv, config.yaml, train.log),
# models_last.tar and models_best.tar (weights-only model files <config>_last.pt / <config>_best.pt
# from `selfdesc export-weights`; best = highest validation MMA@3).
#
# Usage: [EXTRA="key=value ..."] [VAL_IMAGES=DIR] bash benchmarks/device_residual.sh [LIMIT=540] [STEPS=30000] [VAL=250] [RESUME_DIR]
#   RESUME_DIR: a carried folder holding <config>.tar files from an earlier call; those runs resume.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
LIMIT=${1:-540}; STEPS=${2:-30000}; VAL=${3:-250}; RESUME_DIR=${4:-}
CONFIGS="residual_sift residual_cnn_only residual_fg_only residual_half_cnn"
RUNS=/tmp/residual_runs
mkdir -p $RUNS /tmp/models_last /tmp/models_best
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
pids=""
for cfg in $CONFIGS; do
  RESUME=""
  if [ -n "$RESUME_DIR" ] && [ -f "$RESUME_DIR/$cfg.tar" ]; then
    mkdir -p $RUNS/$cfg && tar -xf "$RESUME_DIR/$cfg.tar" -C $RUNS/$cfg && RESUME=--resume
  fi
  timeout "$LIMIT" python3 -m selfdesc train --config configs/$cfg.yaml --images .carry/shard-a --out $RUNS/$cfg --device cuda $RESUME \
    train.steps=$STEPS train.progress=false train.log_every=50 train.checkpoint_every=200 train.validate_every=$VAL \
    train.num_workers=3 method.threads=3 val.images=${VAL_IMAGES:-.carry/synth-base} ${EXTRA:-} > /tmp/$cfg.log 2>&1 &
  pids="$pids $!"
done
for p in $pids; do wait $p; echo "run $p exit $? (124 = stopped by the time limit)"; done
for cfg in $CONFIGS; do
  echo "== $cfg"; tail -n 2 /tmp/$cfg.log
  [ -f $RUNS/$cfg/metrics.csv ] && { head -n 1 $RUNS/$cfg/metrics.csv; tail -n 2 $RUNS/$cfg/metrics.csv; }
  cat /tmp/$cfg.log >> $RUNS/$cfg/train.log
  for ck in last best; do
    [ -f $RUNS/$cfg/checkpoints/$ck.pt ] && python3 -m selfdesc export-weights $RUNS/$cfg /tmp/models_$ck/${cfg}_$ck.pt --checkpoint $ck.pt
  done
  rm -f $RUNS/$cfg/checkpoints/best.pt
  tar -cf $OUT/$cfg.tar -C $RUNS/$cfg --exclude=tensorboard --exclude=validation-synth --exclude=validation-model.pt .
done
tar -cf $OUT/models_last.tar -C /tmp/models_last .
tar -cf $OUT/models_best.tar -C /tmp/models_best .
ls -la $OUT
