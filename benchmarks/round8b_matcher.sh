#!/usr/bin/env bash
# Round 8b (session 7): the default's matcher again, alone on a fresh H200, in one call, after round 8's
# machine was given back with its runs (only the metrics had come back). Same settings as round 8's
# matcher_lite (benchmarks/round8_runs.sh) but a cosine schedule over 800 steps and a 4-minute limit;
# returns the exported best/last models, the metrics and the log.
# Carry: .whl .carry/val-base .carry/train-1 .carry/train-2 .carry/train-3 .carry/train-4
set -uo pipefail
R=/root/r8b; mkdir -p $R/data/train
pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $R/site .whl/*.whl || exit 1
export PYTHONPATH=$R/site:$PWD PYTHONUNBUFFERED=1
for d in .carry/train-*; do cp -r $d/. $R/data/train/; done
python3 -m selfdesc train-matcher --config configs/matcher_default.yaml --images $R/data/train --device cuda --out $R/m \
  --max-minutes ${MINUTES:-4} method.features.name=default method.features.max_keypoints=2048 data.size=[400,300] \
  method.hcrops.crop_size=288 method.hcrops.max_zoom_out=1.5 method.matcher.width=192 method.matcher.num_layers=5 \
  train.steps=${STEPS:-800} train.validate_every=200 train.checkpoint_every=200 train.num_workers=14 train.progress=false \
  val.images=$PWD/.carry/val-base > $OUT/log.txt 2>&1
for ck in best last; do python3 -m selfdesc export-weights $R/m $OUT/matcher_lite_$ck.pt --checkpoint $ck.pt; done
cp $R/m/metrics.csv $OUT/matcher_lite.csv; tail -n 5 $OUT/log.txt; ls -la $OUT
