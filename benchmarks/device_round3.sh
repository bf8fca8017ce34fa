#!/usr/bin/env bash
# One GPU call (one H200) that does everything the last ~10 minutes of this project's device
# budget allow, in three phases; see benchmarks/RESULTS.md §7-§10.
#   1. TPR vs HNDesc training cost: peak GPU memory and time per step at batch 8 (quiet GPU).
#   2. GPU extraction time of the shipped default model on graf (quiet GPU).
#   3. TRAIN_S seconds of concurrent short training runs on the one GPU: the six HNDesc ablations
#      (in-pair, in-batch, gd, selfgd, no augmentation, colour+stylization), TPR with the ASLFeat
#      and Swin backbones, and the four residual-descriptor configs (validation MMA@3 on the
#      held-out .carry/val-base every VAL_EVERY steps, for the convergence comparison).
#   4. EVAL_S seconds: every trained model on a held-out synthetic benchmark (13 of eval/synth-base).
# Model files, metrics and evaluations come back in $OUT.
# Carry: .whl (kornia wheels) .carry/shard-a .carry/val-base .carry/index .carry/graf .carry/synth-base
# Results are written to $OUT phase by phase, so a cut-short call still returns what was done.
#   DEVICE=cpu TRAIN_S=30 OUT=/tmp/out bash benchmarks/device_round3.sh   # dry run on a CPU
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEVICE=${DEVICE:-cuda}; TRAIN_S=${TRAIN_S:-200}; EVAL_S=${EVAL_S:-90}; VAL_EVERY=${VAL_EVERY:-200}; WORKERS=${WORKERS:-1}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
fi
PY=${PY:-python3}
W=${WORK:-/tmp/round3} && mkdir -p $W/models $W/metrics $W/eval
START=$(date +%s)

# 1. training cost (batch 8, 10 timed steps each)
timeout 45 $PY benchmarks/train_cost.py --device $DEVICE --images .carry/shard-a --batch 8 --steps 10 \
  --configs tpr_aslfeat,tpr_swin,hndesc_r2d2 --out $W/metrics/train_cost.json 2>&1 | grep -v Warning
# 2. extraction time of the default model (and SIFT/RootSIFT on the host CPU)
timeout 25 $PY benchmarks/time_extraction.py --features default,sift,rootsift --images .carry/graf --device $DEVICE \
  --repeat 3 --out $W/metrics/timing_graf_$DEVICE.json 2>&1 | tail -n 4
tar -czf $OUT/metrics.tar.gz -C $W metrics
echo "phase 1-2 done after $(( $(date +%s) - START )) s"

# 3. concurrent short training runs
common="train.progress=false train.num_workers=$WORKERS"
pids=""
launch() {  # name config extra-args...
  local name=$1 cfg=$2; shift 2
  timeout --signal=TERM --kill-after=15 $TRAIN_S $PY -m selfdesc train --config configs/$cfg.yaml --images .carry/shard-a --device $DEVICE \
    --out $W/runs/$name $common "$@" \
    > $W/metrics/$name.log 2>&1 &
  pids="$pids $!"
}
for cfg in hndesc_r2d2 hndesc_r2d2_inpair hndesc_r2d2_gd hndesc_r2d2_selfgd hndesc_r2d2_noaug hndesc_r2d2_stylize; do
  extra=""; [ $cfg = hndesc_r2d2_gd ] && extra="data.index=.carry/index/shard-a.npz"
  [ $cfg = hndesc_r2d2_selfgd ] && extra="method.neighbours.refresh_every=100"
  launch ab_$cfg $cfg train.steps=5000 train.log_every=25 train.checkpoint_every=100 $extra
done
for cfg in tpr_aslfeat tpr_swin; do
  launch $cfg $cfg train.steps=${TPR_STEPS:-600} method.schedule_steps=${TPR_STEPS:-600} train.log_every=25 train.checkpoint_every=100
done
for cfg in residual_sift residual_cnn_only residual_fg_only residual_half_cnn; do
  launch $cfg $cfg train.steps=30000 train.log_every=25 train.checkpoint_every=100 train.validate_every=$VAL_EVERY \
    val.images=.carry/val-base val.num_images=6 method.threads=1
done
sleep 60; echo "after 60 s:"; for f in $W/metrics/*.log; do echo "$(basename $f): $(tail -c 300 $f | tr '\r' '\n' | tail -n 1)"; done
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader
for p in $pids; do wait $p; done
echo "training done after $(( $(date +%s) - START )) s"

# export: weights-only model files (the last and, with validation, the best checkpoint of each run)
for run in $W/runs/*; do
  name=$(basename $run)
  [ -f $run/metrics.csv ] && cp $run/metrics.csv $W/metrics/$name.csv
  [ -f $run/checkpoints/last.pt ] && $PY -m selfdesc export-weights $run $W/models/$name.pt > /dev/null
  [ -f $run/checkpoints/best.pt ] && $PY -m selfdesc export-weights $run $W/models/${name}_best.pt --checkpoint best.pt > /dev/null
  echo "$name: $(tail -n 1 $run/metrics.csv 2>/dev/null | cut -d, -f1-4)"
done
tar -czf $OUT/metrics.tar.gz -C $W metrics
(cd $W/models && tar -cf $OUT/models_hndesc.tar ab_*.pt; tar -cf $OUT/models_residual_last.tar $(ls residual_*.pt | grep -v _best); \
  tar -cf $OUT/models_residual_best.tar residual_*_best.pt; cp tpr_*.pt $OUT/)
echo "models back after $(( $(date +%s) - START )) s"

# 4. evaluation on the held-out synthetic benchmark (13 base images of eval/synth-base, seed 0)
$PY -m selfdesc data synth --base .carry/synth-base --out $W/synth --seed 0 --max-side 640 > /dev/null
M=$W/models; ev="eval homography --dataset synth --root $W/synth --device $DEVICE --quiet --no-plot"
timeout $EVAL_S $PY -m selfdesc $ev --features default,$(ls $M/ab_*.pt | paste -sd,) --out $W/eval/hndesc > $W/eval_hndesc.log 2>&1 &
timeout $EVAL_S $PY -m selfdesc $ev --features sift,rootsift,$(ls $M/residual_*_best.pt | paste -sd,) --out $W/eval/residual > $W/eval_residual.log 2>&1 &
timeout $EVAL_S $PY -m selfdesc $ev --features $(ls $M/tpr_*.pt | paste -sd,) --out $W/eval/tpr > $W/eval_tpr.log 2>&1 &
wait
grep -h overall $W/eval/*/results.md
mkdir -p $W/eval && cp $W/eval_*.log $W/eval/ && tar -czf $OUT/eval.tar.gz --exclude='*.npy' -C $W eval
ls -la $OUT; echo "all done after $(( $(date +%s) - START )) s"
