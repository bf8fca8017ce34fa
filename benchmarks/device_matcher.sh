#!/usr/bin/env bash
# GPU: train the attention matcher (issue 12, docs/matcher.md) for one feature on .carry/train-all,
# over back-to-back calls on one machine (the run goes on in the background between them while
# the machine stays warm; every run is resumable with the run folder present), then export it
# and measure matching speed.
#
#   bash benchmarks/device_matcher.sh train FEATURES SECONDS [NAME] [override ...]
#       carry .whl .carry/train-all (+ the features' model file or .carry/weights for peers).
#       FEATURES: a registered feature (default, sift, disk, ...) or a model file, e.g.
#       .carry/hndesc-lite.pt (add method.features.label=default when that file is to ship as
#       `default`, so the matcher records that name). Starts (setsid, so it outlives the call) or resumes
#       `selfdesc train-matcher --config configs/matcher_default.yaml` into runs/matcher/NAME
#       (NAME defaults to the feature's file stem; give it when adding overrides); on several GPUs
#       through torchrun. With .carry/val-base (or VAL=DIR) present, validates every 500 steps on a
#       held-out synthetic benchmark matched by the matcher (val/mma@3 selects best.pt; val/mnn_*
#       is the same features with MNN). Prints the status every 60 s for SECONDS, then returns
#       logs.tar.gz (metrics.csv, config.yaml, log).
#   bash benchmarks/device_matcher.sh status [NAME]
#       the last log line and logs.tar.gz.
#   bash benchmarks/device_matcher.sh finish SECONDS [NAME]
#       lets the run train SECONDS more, stops it (SIGTERM: it saves a checkpoint), exports
#       best.pt (else last.pt) as matcher_NAME.pt (returned split in 15 MiB parts: cat matcher_NAME.pt.part-* > matcher_NAME.pt),
#       then times it: GPU 1024 / 2048 keypoints, batch 1 and 8, fp32 and bf16; CPU 1024 / 2048.
#       Returns logs.tar.gz (with speed_gpu.json, speed_cpu.json) and the model parts.
#   bash benchmarks/device_matcher.sh speed [MATCHER]
#       the speed benchmark alone (default: random weights, default settings).
#
# A fresh machine cannot resume a run (the checkpoint with optimizer state is ~100 MB, over
# what travels); keep the calls back to back. More steps: train.steps=N as an override.
#
# Dry run on a CPU:
#   DEVICE=cpu PY=.venv/bin/python IMAGES=DIR OUT=/tmp/o bash benchmarks/device_matcher.sh train sift 20 tiny \
#     train.steps=4 train.batch_size=2 train.num_workers=0 method.features.max_keypoints=64 method.matcher.width=32 method.matcher.num_layers=1
#   DEVICE=cpu PY=.venv/bin/python SPEED_ARGS="--keypoints 64 --seconds 1" OUT=/tmp/o bash benchmarks/device_matcher.sh finish 5 tiny
set -uo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}; IMAGES=${IMAGES:-.carry/train-all}; VAL=${VAL:-.carry/val-base}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
[ -d .carry/weights ] && export SELFDESC_WEIGHTS_DIR=$PWD/.carry/weights
PHASE=${1:?train, status, finish or speed}; shift
W=runs/matcher; mkdir -p $W

log_tail() {  # NAME: the last metrics row (step,loss,final_nll,precision,recall,...) and the last log line
  tail -n 1 $W/$1/metrics.csv 2>/dev/null | cut -d, -f1-7
  tail -c 600 $W/$1.log 2>/dev/null | tr '\r' '\n' | grep -v '^$' | tail -n 1 | cut -c1-200
}
snapshot() {  # NAME: metrics, config, log (and speed results) -> $OUT/logs.tar.gz
  local d=$W/pack-$1; mkdir -p $d
  cp $W/$1/metrics.csv $W/$1/config.yaml $d/ 2>/dev/null; cp $W/$1.log $d/train.log 2>/dev/null
  cp $W/speed_*.json $d/ 2>/dev/null
  tar -czf $OUT/logs.tar.gz -C $d .
}
wait_for() {  # SECONDS NAME: print the status every 60 s
  local end=$(( $(date +%s) + $1 ))
  while [ $(date +%s) -lt $end ]; do
    local left=$(( end - $(date +%s) )); sleep $(( left < 60 ? left : 60 ))
    echo "--- $(date +%T) $2: $(log_tail $2)"
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader | paste -sd' '
    kill -0 $(cat $W/$2.pid 2>/dev/null) 2>/dev/null || { echo "$2: not running"; break; }
  done
  snapshot $2
}
speed() {  # MATCHER-or-empty
  local m=(); [ -n "$1" ] && m=(--matcher $1)
  if [ "$DEVICE" = cuda ]; then
    for p in fp32 bf16; do $PY benchmarks/matcher_speed.py "${m[@]}" --device cuda --batch 1,8 --precision $p ${SPEED_ARGS:-} --json $W/speed_gpu_$p.json | tail -n 6; done
  fi
  $PY benchmarks/matcher_speed.py "${m[@]}" --device cpu --threads $(nproc) ${SPEED_ARGS:-} --json $W/speed_cpu.json | tail -n 5
}

case $PHASE in
train)
  FEATURES=${1:?features}; SECS=${2:?seconds}; NAME=${3:-$(basename "${FEATURES%.pt}")}; shift 3 2>/dev/null || shift $#
  [ -d "$IMAGES" ] || { echo "no image folder $IMAGES"; exit 2; }
  resume=""; [ -f $W/$NAME/checkpoints/last.pt ] && resume=--resume
  if kill -0 $(cat $W/$NAME.pid 2>/dev/null) 2>/dev/null; then
    echo "$NAME: already running"
  else
    NGPU=1; [ "$DEVICE" = cuda ] && NGPU=$(nvidia-smi -L | wc -l)
    launcher=($PY -m selfdesc); [ "$NGPU" -gt 1 ] && launcher=($PY -m torch.distributed.run --standalone --nproc_per_node $NGPU -m selfdesc)
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
    echo "$NAME: starting on $NGPU device(s) $resume"
    val=(); [ -d "$VAL" ] && val=(val.images=$VAL val.num_images=6 val.max_keypoints=1024 train.validate_every=500)
    setsid nohup "${launcher[@]}" train-matcher --config configs/matcher_default.yaml --features "$FEATURES" --images "$IMAGES" \
      --device $DEVICE --out $W/$NAME $resume train.progress=false "${val[@]}" "$@" >> $W/$NAME.log 2>&1 < /dev/null &
    echo $! > $W/$NAME.pid
  fi
  wait_for $SECS $NAME
  ;;
status)
  NAME=${1:?name}; echo "$NAME: $(log_tail $NAME)"; snapshot $NAME
  ;;
finish)
  SECS=${1:?seconds}; NAME=${2:?name}
  pid=$(cat $W/$NAME.pid 2>/dev/null)
  [ -n "$pid" ] && kill -0 $pid 2>/dev/null && wait_for $SECS $NAME
  [ -n "$pid" ] && kill -TERM -- -$pid 2>/dev/null
  while [ -n "$pid" ] && kill -0 $pid 2>/dev/null; do sleep 1; done
  echo "--- stopped $(date +%T) $NAME: $(log_tail $NAME)"
  M=$W/matcher_$NAME.pt
  ck=last.pt; [ -f $W/$NAME/checkpoints/best.pt ] && ck=best.pt   # best validation MMA@3 when validated
  $PY -m selfdesc export-weights $W/$NAME $M --checkpoint $ck || exit 1
  speed $M
  snapshot $NAME
  split -b 15m -d $M $OUT/matcher_$NAME.pt.part-
  sha256sum $M; ls -la $OUT
  ;;
speed)
  speed "${1:-}"; mkdir -p $W/none; snapshot none
  ;;
*) echo "unknown phase $PHASE (train, status, finish, speed)"; exit 2 ;;
esac
