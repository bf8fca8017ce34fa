#!/usr/bin/env bash
# GPU training and evaluation for issues 4 (TPR), 5 (residual descriptors) and 6 (throughput, pose)
# on one H200, over two back-to-back calls (the machine stays warm between them, so the runs in
# runs/round4/ go on; every run is resumable). See benchmarks/RESULTS.md §13-§15.
#
#   bash benchmarks/device_round4.sh train SECONDS
#       carry .whl .carry/shard-a .carry/val-base. Starts (setsid, so they outlive the call) ten
#       runs on the one GPU, or resumes them: TPR Swin (the model to ship) and its three ablations
#       (hard labels, no curriculum, no saliency) and TPR ASLFeat, all TPR_STEPS steps with
#       method.schedule_steps=TPR_STEPS; the five residual configs (residual, CNN-only, f(g)-only,
#       half CNN, RootSIFT-upright) with validation MMA@3 on .carry/val-base every 250 steps.
#       Waits SECONDS, then returns the metrics so far.
#   bash benchmarks/device_round4.sh finish SECONDS
#       carry .whl .carry/weights .carry/hpatches-graf .carry/synth-base .carry/strecha. Lets the runs
#       train SECONDS more, stops them (SIGTERM: each saves a checkpoint), exports the models, then
#       on the quiet GPU: extraction throughput; then, concurrently, one homography run per dataset
#       (graf, the held-out synthetic benchmark) with every model and peer, the SuperPoint protocol
#       for the residual group, and Strecha relative pose at full resolution.
set -uo pipefail
# Dry run on a CPU (EVAL_ARGS shrinks the evaluations):
#   DEVICE=cpu PY=.venv/bin/python TPR_STEPS=4 OUT=/tmp/o bash benchmarks/device_round4.sh train 60
#   DEVICE=cpu PY=.venv/bin/python SYNTH_BASE=DIR EVAL_ARGS="--resize-max 160" OUT=/tmp/o bash benchmarks/device_round4.sh finish 10
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=2 MKL_NUM_THREADS=2
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export SELFDESC_WEIGHTS_DIR=$PWD/.carry/weights
PHASE=${1:?train or finish}; SECONDS_ARG=${2:?seconds}
W=runs/round4; mkdir -p $W/logs $W/models
TPR_STEPS=${TPR_STEPS:-2000}
snapshot() {  # metrics and logs so far -> $OUT/metrics.tar.gz
  for r in $W/*/; do [ -f $r/metrics.csv ] && cp $r/metrics.csv $W/logs/$(basename $r).csv; done
  tar -czf $OUT/metrics.tar.gz -C $W logs
}
status() { for f in $W/logs/*.log; do echo "$(basename $f .log): $(tail -c 400 $f | tr '\r' '\n' | grep -v '^$' | tail -n 1 | cut -c1-150)"; done; }

launch() {  # name config extra-overrides...
  local name=$1 cfg=$2; shift 2
  local resume=""; [ -f $W/$name/checkpoints/last.pt ] && resume=--resume
  setsid nohup $PY -m selfdesc train --config configs/$cfg.yaml --images .carry/shard-a --device $DEVICE \
    --out $W/$name $resume train.progress=false train.num_workers=2 "$@" >> $W/logs/$name.log 2>&1 < /dev/null &
  echo $! > $W/$name.pid
}

if [ "$PHASE" = train ]; then
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  tpr="train.steps=$TPR_STEPS method.schedule_steps=$TPR_STEPS train.log_every=25 train.checkpoint_every=100"
  for cfg in tpr_swin tpr_swin_hardlabels tpr_swin_nocurriculum tpr_swin_nosaliency tpr_aslfeat; do launch $cfg $cfg $tpr; done
  res="train.log_every=25 train.checkpoint_every=250 train.validate_every=250 val.images=.carry/val-base val.num_images=6 method.threads=1"
  for cfg in residual_sift residual_cnn_only residual_fg_only residual_half_cnn residual_rootsift_upright; do launch $cfg $cfg $res; done
  END=$(( $(date +%s) + SECONDS_ARG ))
  while [ $(date +%s) -lt $END ]; do
    sleep $(( END - $(date +%s) < 120 ? END - $(date +%s) : 120 )); echo "--- $(date +%T)"; status
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv,noheader 2>/dev/null; snapshot
  done
  exit 0
fi

# finish
END=$(( $(date +%s) + SECONDS_ARG ))
while [ $(date +%s) -lt $END ]; do sleep 5; done
for p in $W/*.pid; do kill -TERM $(cat $p) 2>/dev/null; done
for p in $W/*.pid; do while kill -0 $(cat $p) 2>/dev/null; do sleep 1; done; done
echo "--- stopped $(date +%T)"; status; snapshot
M=$W/models
for r in $W/*/; do
  name=$(basename $r); [ -f $r/checkpoints/last.pt ] || continue
  ck=last.pt; [ -f $r/checkpoints/best.pt ] && ck=best.pt   # residual runs: best validation MMA@3 (held-out val-base)
  $PY -m selfdesc export-weights $r $M/$name.pt --checkpoint $ck > /dev/null && echo "$name: $ck $(du -h $M/$name.pt | cut -f1)"
done
(cd $M && tar -cf $OUT/models_tpr_swin.tar tpr_swin.pt tpr_swin_hardlabels.pt; tar -cf $OUT/models_tpr_abl.tar tpr_swin_nocurriculum.pt tpr_swin_nosaliency.pt tpr_aslfeat.pt; tar -cf $OUT/models_residual.tar residual_*.pt)
ls -la $OUT

# extraction throughput on the quiet GPU (64 shard-a photos resized to 640x480 and 1600x1200)
[ "$DEVICE" = cuda ] && FEATURES="sift,rootsift,disk,aliked,xfeat,r2d2,default,tpr=$M/tpr_swin.pt,residual-sift=$M/residual_sift.pt" \
  OUT=$W/throughput timeout 200 bash benchmarks/device_throughput.sh 2>&1 | grep -v Warning | tail -n 12
cp $W/throughput/throughput.json $OUT/ 2>/dev/null

E=$W/eval; mkdir -p $E
$PY -m selfdesc data synth --base ${SYNTH_BASE:-.carry/synth-base} --out $W/synth --seed 0 --max-side 640 > /dev/null
ALL="sift,rootsift,disk,aliked,r2d2,xfeat,default,$(ls $M/tpr_*.pt | paste -sd,),$(ls $M/residual_*.pt | paste -sd,)"
RES="sift,rootsift,default,$(ls $M/residual_*.pt | paste -sd,)"
ev="$PY -m selfdesc eval"
$ev homography --dataset hpatches --root .carry/hpatches-graf --features $ALL ${EVAL_ARGS:-} --device $DEVICE --quiet --out $E/graf > $E/graf.log 2>&1 &
$ev homography --dataset synth --root $W/synth --features $ALL ${EVAL_ARGS:-} --device $DEVICE --quiet --out $E/synth > $E/synth.log 2>&1 &
$ev superpoint --dataset hpatches --root .carry/hpatches-graf --features $RES --device $DEVICE --quiet --out $E/sp_graf > $E/sp_graf.log 2>&1 &
$ev superpoint --dataset synth --root $W/synth --features $RES --device $DEVICE --quiet --out $E/sp_synth > $E/sp_synth.log 2>&1 &
$ev pose --root .carry/strecha --format strecha --features sift,rootsift,disk,aliked,xfeat,default,$M/tpr_swin.pt,$M/residual_sift.pt \
  --max-keypoints 8192 ${EVAL_ARGS:-} --device $DEVICE --quiet --out $E/pose_strecha > $E/pose_strecha.log 2>&1 &
wait
for d in $E/*/; do echo "== $(basename $d)"; cat $d/results.md 2>/dev/null | head -n 40; done
tar -czf $OUT/eval.tar.gz --exclude='*.npy' --exclude='*.png' -C $W eval
snapshot; ls -la $OUT
