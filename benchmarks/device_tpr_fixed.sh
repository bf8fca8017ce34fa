#!/usr/bin/env bash
# GPU training of the fixed TPR (issue 15, docs/tpr.md "Diagnosis and fix") on one GPU: the model to
# ship and the paper's three ablations, all TPR_STEPS steps (method.schedule_steps=TPR_STEPS, equal
# step counts), on every training shard, with validation MMA@3 on held-out photos every 250 steps.
#
#   bash benchmarks/device_tpr_fixed.sh SECONDS
#       carry .whl .carry/train-all .carry/val-base. Starts (setsid, so the runs outlive the call) or
#       resumes four runs in runs/tpr_fixed/ (a run whose process is still alive is left alone):
#         tpr           SHIP config (default configs/tpr_aslfeat.yaml): soft labels + curriculum + saliency
#         tpr_hard      the same with hard labels               (method.loss.labels=hard)
#         tpr_nocurr    the same without curriculum             (method.curriculum.shape=constant)
#         tpr_nosal     the same without saliency weighting     (method.loss.saliency=false)
#       waits SECONDS, then returns through $OUT (2 files): metrics.tar.gz (metrics.csv and log of
#       every run) and models.tar (each run's weights-only model from best.pt, the best validation
#       MMA@3, else last.pt; ~3 MB each for ASLFeat). Call it again on the same warm machine to go on.
#
# Dry run on a CPU (a few steps, tiny validation):
#   DEVICE=cpu PY=.venv/bin/python TPR_STEPS=4 TRAIN_ARGS="train.batch_size=2 method.hcrops.crop_size=96 val.num_images=1 val.max_side=160" \
#     IMAGES=DIR VAL=DIR OUT=/tmp/o bash benchmarks/device_tpr_fixed.sh 60
set -uo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
SECONDS_ARG=${1:?seconds to wait}
OUT=$(cd "${OUT:?OUT must name the folder that comes back}" && pwd) || exit 2
SHIP=${SHIP:-tpr_aslfeat}; TPR_STEPS=${TPR_STEPS:-2500}
IMAGES=${IMAGES:-.carry/train-all}; VAL=${VAL:-.carry/val-base}
W=${RUNS_DIR:-runs/tpr_fixed}; mkdir -p $W/logs $W/models
[ -d "$IMAGES" ] || { echo "device_tpr_fixed.sh: $IMAGES: no such folder (carry it)"; exit 2; }
[ -d "$VAL" ] || { echo "device_tpr_fixed.sh: $VAL: no such folder (carry it)"; exit 2; }

common="train.steps=$TPR_STEPS method.schedule_steps=$TPR_STEPS train.progress=false train.num_workers=3 \
train.log_every=25 train.checkpoint_every=100 train.validate_every=250 val.images=$VAL val.num_images=6 ${TRAIN_ARGS:-}"

launch() {  # name extra-overrides...
  local name=$1; shift
  if [ -f $W/$name.pid ] && kill -0 "$(cat $W/$name.pid)" 2>/dev/null; then echo "$name: still running"; return; fi
  local resume=""; [ -f $W/$name/checkpoints/last.pt ] && resume=--resume
  # shellcheck disable=SC2086
  setsid nohup $PY -m selfdesc train --config configs/$SHIP.yaml --images $IMAGES --device $DEVICE \
    --out $W/$name $resume $common "$@" >> $W/logs/$name.log 2>&1 < /dev/null &
  echo $! > $W/$name.pid; echo "$name: started ${resume:-fresh} (pid $!)"
}
status() { for f in $W/logs/*.log; do echo "$(basename $f .log): $(tail -c 400 $f | tr '\r' '\n' | grep -v '^$' | tail -n 1 | cut -c1-160)"; done; }
snapshot() {  # metrics and logs so far -> $OUT/metrics.tar.gz
  for r in $W/*/; do [ -f $r/metrics.csv ] && cp $r/metrics.csv $W/logs/$(basename $r).csv; done
  tar -czf $OUT/metrics.tar.gz -C $W logs
}

[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
launch tpr
launch tpr_hard method.loss.labels=hard
launch tpr_nocurr method.curriculum.shape=constant
launch tpr_nosal method.loss.saliency=false

END=$(( $(date +%s) + SECONDS_ARG ))
while [ $(date +%s) -lt $END ]; do
  left=$(( END - $(date +%s) )); sleep $(( left < 60 ? left : 60 ))
  echo "--- $(date +%T)"; status
  [ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
  snapshot
done

# models from the checkpoints written so far (the runs go on)
for name in tpr tpr_hard tpr_nocurr tpr_nosal; do
  r=$W/$name; [ -f $r/checkpoints/last.pt ] || continue
  ck=last.pt; [ -f $r/checkpoints/best.pt ] && ck=best.pt
  $PY -m selfdesc export-weights $r $W/models/$name.pt --checkpoint $ck > /dev/null && echo "$name: $ck $(du -h $W/models/$name.pt | cut -f1)"
done
(cd $W/models && tar -cf $OUT/models.tar ./*.pt)
snapshot; ls -la $OUT
