#!/usr/bin/env bash
# One GPU call: TPR with the decorrelation guard (method.collapse.cov_weight) for each config:weight
# in RUNS, TPR_STEPS steps each (schedules over TPR_STEPS), run concurrently on the one GPU
# for at most TRAIN_S seconds, then the held-out synthetic benchmark and graf for the new models with
# the default model, SIFT, RootSIFT and R2D2 in one run per dataset. See benchmarks/RESULTS.md §14.
# Carry: .whl .carry/shard-a .carry/synth-base .carry/hpatches-graf .carry/weights (R2D2 only fits).
set -uo pipefail
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=4
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD SELFDESC_WEIGHTS_DIR=$PWD/${WEIGHTS_DIR:-.carry/weights}
TPR_STEPS=${TPR_STEPS:-1500}; TRAIN_S=${TRAIN_S:-270}; RUNS=${RUNS:-"tpr_swin:0.04 tpr_swin:0.2 tpr_aslfeat:0.04"}  # config:cov_weight
W=runs/tpr_guard; M=$W/models; E=$W/eval; mkdir -p $M $E
pids=""
for run in $RUNS; do
  cfg=${run%%:*}; cov=${run##*:}; name=${cfg}_cov$cov
  timeout --signal=TERM --kill-after=20 $TRAIN_S python3 -m selfdesc train --config configs/$cfg.yaml --images .carry/shard-a --device cuda \
    --out $W/$name train.progress=false train.num_workers=3 train.steps=$TPR_STEPS method.schedule_steps=$TPR_STEPS \
    train.log_every=25 train.checkpoint_every=100 method.collapse.cov_weight=$cov > $W/$name.log 2>&1 &
  pids="$pids $!"
done
for p in $pids; do wait $p; done
for r in $W/tpr_*/; do
  name=$(basename $r); tail -n 1 $r/metrics.csv; cp $r/metrics.csv $OUT/$name.csv
  python3 -m selfdesc export-weights $r $M/$name.pt > /dev/null && cp $M/$name.pt $OUT/
done
python3 -m selfdesc data synth --base .carry/synth-base --out $W/synth --seed 0 --max-side 640 > /dev/null
F="sift,rootsift,r2d2,default,$(ls $M/*.pt | paste -sd,)"
python3 -m selfdesc eval homography --dataset synth --root $W/synth --features $F --device cuda --quiet --no-plot --out $E/synth > $E/synth.log 2>&1 &
python3 -m selfdesc eval homography --dataset hpatches --root .carry/hpatches-graf --features $F --device cuda --quiet --no-plot --out $E/graf > $E/graf.log 2>&1 &
wait
grep -h overall $E/*/results.md
tar -czf $OUT/eval.tar.gz --exclude='*.npy' -C $W eval
