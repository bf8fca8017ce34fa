#!/usr/bin/env bash
# GPU round 6, first call (quiet GPU, nothing else running): training cost per step (TPR vs HNDesc,
# issue 15), matching speed of the attention matcher (issue 12), whole-pipeline extraction speed
# (issue 13). Carry .whl .carry/weights-min .carry/speed. Also leaves the peers' weights and the speed
# photos in $R/data for the later calls of benchmarks/device_round.sh. Returns (at most 8 files):
# cost.json, mspeed_fp32.json, mspeed_bf16.json, speed.tar.gz (benchmarks/device_extract_speed.sh's output).
set -uo pipefail
export PYTHONUNBUFFERED=1; R=${R:-/root/r5}; PY=${PY:-python3}
mkdir -p $R/data/weights $R/data/speed
cp -r .carry/weights-min/. $R/data/weights/; cp -r .carry/speed/. $R/data/speed/
$PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
echo "$(date +%T) training cost"
$PY benchmarks/train_cost.py --configs tpr_aslfeat,hndesc_r2d2,hndesc_lite_v2 --images .carry/speed --batch 8 --steps 10 \
  --device cuda --out $OUT/cost.json 2>&1 | grep -v Warning | tail -n 8
echo "$(date +%T) matcher speed"
for p in fp32 bf16; do
  $PY benchmarks/matcher_speed.py --matcher selfdesc/weights/matcher_sift.pt --device cuda --batch 1,8 --precision $p \
    --seconds 3 --json $OUT/mspeed_$p.json 2>&1 | grep -v Warning | tail -n 8
done
echo "$(date +%T) extraction speed"
OUT=/tmp/es-out IMAGES=.carry/speed N640=32 COPIES=8 N1600=32 SWEEP=1,16,64 PER_RUN_S=${PER_RUN_S:-75} DEADLINE_S=${DEADLINE_S:-330} \
  SELFDESC_WEIGHTS_DIR=$PWD/.carry/weights-min bash benchmarks/device_extract_speed.sh xfeat,disk,aliked,default 2>&1 | tail -n 60
tar -czf $OUT/speed.tar.gz -C /tmp es-out
echo "$(date +%T) done"
