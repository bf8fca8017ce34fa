#!/usr/bin/env bash
# GPU training of HNDesc-lite (issue 11): two runs side by side on one H200, resumable across calls.
#
#   bash benchmarks/device_lite.sh train SECONDS
#       carry .whl .carry/train-all .carry/val-lite (see VAL below). Starts (setsid, so they outlive
#       the call) or resumes two runs in runs/lite/: lite128 (configs/hndesc_lite.yaml) and lite64
#       (configs/hndesc_lite64.yaml), with validation (MMA@1/3/5 on a synthetic benchmark built from
#       $VAL; best.pt by the mean of MMA@1 and MMA@3) every 1000 steps. Prints their status every
#       2 minutes for SECONDS, then copies to $OUT: metrics.tar.gz (metrics CSVs and logs) and each
#       run's checkpoints as <run>_last.pt / <run>_best.pt (a few MB each; 5 files, flat).
#       On a fresh machine (runs/lite absent), a run starts from SEED/<run>_last.pt (+ <run>_best.pt,
#       <run>.csv) when SEED names a carried folder holding what an earlier call returned.
#   bash benchmarks/device_lite.sh finish [SECONDS]
#       lets the runs train SECONDS more (default 0), stops them (SIGTERM: each saves last.pt),
#       exports model files from best.pt (last.pt when there is none) to $OUT as hndesc_lite.pt
#       (128-D) and hndesc_lite64.pt, plus metrics.tar.gz and the checkpoints (7 files).
#
# Environment: VAL (validation base images; default .carry/val-lite, else .carry/val-base; note that
# .carry/val-base is the first 12 photos of shard-b, which .carry/train-all contains, so build a
# held-out one: ls ../shared/data/eval/synth-base | sort | awk 'NR % 3 == 2' | while read f; do
# cp ../shared/data/eval/synth-base/$f .carry/val-lite/; done   (13 files, never in the held-out
# synthetic benchmark, which uses NR % 3 == 1)), TRAIN (default .carry/train-all), NW (loader
# workers per run, default 6), EXTRA (overrides for both runs), SEED (see above), RUNS (the runs,
# "name:config ...", default "lite128:hndesc_lite lite64:hndesc_lite64"), INIT (a model file that
# new runs start from, selfdesc train --init-from; resumed runs ignore it).
#
# HNDesc-lite v2 (dense keypoint head), warm-started from the round-5 128-D model (carry it, e.g. in
# .carry/init/lite_best.pt): RUNS=litev2:hndesc_lite_v2 INIT=.carry/init/lite_best.pt NW=4 \
#   bash benchmarks/device_lite.sh train 540    ... then the same with finish (exports hndesc_lite_v2.pt)
#
# Dry run on a CPU (tiny settings):
#   DEVICE=cpu PY=/work/main/.venv/bin/python TRAIN=../shared/data/train/shard-a VAL=/tmp/val NW=1 \
#     EXTRA="train.batch_size=2 data.size=[160,120] method.hcrops.crop_size=64 train.validate_every=10 \
#     train.checkpoint_every=10 train.log_every=5 val.num_images=2 val.max_side=160" \
#     OUT=/tmp/o bash benchmarks/device_lite.sh train 60
#   DEVICE=cpu PY=/work/main/.venv/bin/python OUT=/tmp/o2 bash benchmarks/device_lite.sh finish
set -uo pipefail
export PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD OMP_NUM_THREADS=2
else
  export PYTHONPATH=$PWD OMP_NUM_THREADS=1
fi
PHASE=${1:?train or finish}; SECONDS_ARG=${2:-0}
TRAIN=${TRAIN:-.carry/train-all}
VAL=${VAL:-}; [ -z "$VAL" ] && { [ -d .carry/val-lite ] && VAL=.carry/val-lite || VAL=.carry/val-base; }
W=runs/lite; mkdir -p $W/logs
RUNS=${RUNS:-"lite128:hndesc_lite lite64:hndesc_lite64"}   # run:config (configs/<config>.yaml; the exported model is <config>.pt)

snapshot() {  # metrics and logs so far -> $OUT/metrics.tar.gz
  for r in $W/*/; do [ -f $r/metrics.csv ] && cp $r/metrics.csv $W/logs/$(basename $r).csv; done
  tar -czf $OUT/metrics.tar.gz -C $W logs
}
status() {  # last training row and last validation row of each run
  for r in $W/*/; do
    [ -f $r/metrics.csv ] || continue
    $PY - "${r%/}/metrics.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
train = [r for r in rows if r.get("loss")]
val = [r for r in rows if r.get("val/score")]
name = sys.argv[1].rstrip("/").split("/")[-2]
if train:
    t = train[-1]
    print(name, "step", t["step"], " ".join(f"{k} {float(t[k]):.3f}" for k in ("loss", "desc_loss", "ap", "cosim", "peaky", "reproj", "dispersity", "steps_per_s") if t.get(k)))
if val:
    v = val[-1]
    print(name, "val step", v["step"], " ".join(f"{k[4:]} {float(v[k]):.3f}" for k in ("val/mma@1", "val/mma@3", "val/ha@3", "val/num_matches") if v.get(k)))
EOF
  done
}
alive() { [ -f $W/$1.pid ] && kill -0 $(cat $W/$1.pid) 2>/dev/null; }

launch() {  # run config
  local name=$1 cfg=$2 resume=""
  if alive $name; then echo "$name: running (pid $(cat $W/$name.pid))"; return; fi
  if [ ! -f $W/$name/checkpoints/last.pt ] && [ -n "${SEED:-}" ] && [ -f $SEED/${name}_last.pt ]; then
    mkdir -p $W/$name/checkpoints
    cp $SEED/${name}_last.pt $W/$name/checkpoints/last.pt
    [ -f $SEED/${name}_best.pt ] && cp $SEED/${name}_best.pt $W/$name/checkpoints/best.pt
    [ -f $SEED/$name.csv ] && cp $SEED/$name.csv $W/$name/metrics.csv
    echo "$name: seeded from $SEED"
  fi
  [ -f $W/$name/checkpoints/last.pt ] && resume=--resume
  [ -z "$resume" ] && [ -n "${INIT:-}" ] && resume="--init-from $INIT"
  setsid nohup $PY -m selfdesc train --config configs/$cfg.yaml --images $TRAIN --device $DEVICE --out $W/$name $resume \
    train.progress=false train.num_workers=${NW:-6} val.images=$VAL ${EXTRA:-} >> $W/logs/$name.log 2>&1 < /dev/null &
  echo $! > $W/$name.pid
  echo "$name: started (pid $!, ${resume:-new run})"
}

copy_checkpoints() {
  for spec in $RUNS; do
    name=${spec%%:*}
    for ck in last best; do
      [ -f $W/$name/checkpoints/$ck.pt ] && cp $W/$name/checkpoints/$ck.pt $OUT/${name}_$ck.pt
    done
  done
}

if [ "$PHASE" = train ]; then
  [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  [ -d "$TRAIN" ] || { echo "no training folder $TRAIN"; exit 2; }
  [ -d "$VAL" ] || { echo "no validation folder $VAL"; exit 2; }
  echo "train $TRAIN ($(ls $TRAIN | wc -l) files), validation $VAL ($(ls $VAL | wc -l) files)"
  for spec in $RUNS; do launch ${spec%%:*} ${spec##*:}; done
  END=$(( $(date +%s) + SECONDS_ARG ))
  while [ $(date +%s) -lt $END ]; do
    left=$(( END - $(date +%s) )); sleep $(( left < 120 ? left : 120 ))
    echo "--- $(date +%T)"; status
    for spec in $RUNS; do n=${spec%%:*}; alive $n || { echo "$n: not running; log tail:"; tail -n 5 $W/logs/$n.log; }; done
    [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
    snapshot
  done
  copy_checkpoints; snapshot; ls -la $OUT
  exit 0
fi

# finish
END=$(( $(date +%s) + SECONDS_ARG ))
while [ $(date +%s) -lt $END ]; do sleep 5; done
for p in $W/*.pid; do [ -f $p ] && kill -TERM $(cat $p) 2>/dev/null; done
for p in $W/*.pid; do [ -f $p ] && while kill -0 $(cat $p) 2>/dev/null; do sleep 1; done; done
echo "--- stopped $(date +%T)"; status; snapshot
for spec in $RUNS; do
  name=${spec%%:*}; model=${spec##*:}; r=$W/$name
  [ -f $r/checkpoints/last.pt ] || continue
  ck=last.pt; [ -f $r/checkpoints/best.pt ] && ck=best.pt
  $PY -m selfdesc export-weights $r $OUT/$model.pt --checkpoint $ck && echo "$name -> $model.pt from $ck ($(du -h $OUT/$model.pt | cut -f1))"
done
copy_checkpoints
ls -la $OUT
