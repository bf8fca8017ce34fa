#!/usr/bin/env bash
# GPU round 7, one call (issue 13, second pass): whole-pipeline `selfdesc extract` images/s with CPU
# and with GPU JPEG decoding, each feature's network-only batched images/s, the per-stage profile
# (ms per image: decode, waiting for decoded images, host-to-device + GPU decoding, network, keypoint
# selection, device-to-host, writing, waiting for the writer, finishing the file), the agreement of
# GPU- and CPU-decoded pixels, the writing cost on this host's CPU (benchmarks/write_speed.py) and the
# pipeline's own ceiling with an extractor that costs nothing (benchmarks/pipeline_overhead.py: XFeat-size
# features, CPU and GPU decoding), at 640x480 and 1600x1200 for xfeat, disk, aliked, default and hndesc-lite.
#
# Run on one H200 (kind nvidia-h200) from the repo root with carry .whl .carry/weights-min .carry/speed:
#   bash benchmarks/round7_speed.sh [FEATURES]
# Writes $OUT/round7_speed.json, $OUT/round7_speed.md, $OUT/log.txt (and $OUT/runs/*.json). About
# 200 s: each (size, feature) is one process with at most $PER_RUN_S seconds, and none starts after
# $DEADLINE_S seconds (a cut run is missing from the report, the others are kept).
#
# CPU dry run (tiny; from the repo root of a checkout with /work/main/.carry):
#   DEVICE=cpu PY=/work/main/.venv/bin/python IMAGES=/work/main/.carry/speed N=4 COPIES_A=1 COPIES_B=1 \
#   SIZE_A=160x120 SIZE_B=200x150 WRITE_IMAGES=32 SELFDESC_WEIGHTS_DIR=/work/main/.carry/weights-min \
#   OUT=/tmp/round7-dry bash benchmarks/round7_speed.sh xfeat,hndesc-lite
set -uo pipefail
export PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}; OUT=${OUT:-/tmp/round7-speed}
start=$(date +%s)
mkdir -p "$OUT/runs"
if [ "$DEVICE" = cuda ]; then
  timeout 60 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/log.txt"
  DECODE=cpu,gpu
else
  export PYTHONPATH=$PWD
  DECODE=cpu
fi
export SELFDESC_WEIGHTS_DIR=${SELFDESC_WEIGHTS_DIR:-$PWD/.carry/weights-min}
FEATURES=${1:-xfeat,disk,aliked,default,hndesc-lite}
IMAGES=${IMAGES:-.carry/speed}; N=${N:-32}
COPIES_A=${COPIES_A:-8}; COPIES_B=${COPIES_B:-2}   # 256 images at 640x480, 64 at 1600x1200
SIZE_A=${SIZE_A:-640x480}; SIZE_B=${SIZE_B:-1600x1200}
PER_RUN_S=${PER_RUN_S:-40}; DEADLINE_S=${DEADLINE_S:-225}; WRITE_IMAGES=${WRITE_IMAGES:-512}
FREE_WORKERS=${FREE_WORKERS:-$(( $(nproc) > 14 ? 12 : 1 ))}   # the pipeline's default on 16 cores
WORK=${WORK:-/tmp/round7-work}; mkdir -p "$WORK"
echo "host: $(nproc) cores; torchvision: $($PY -c 'import torchvision; print(torchvision.__version__)' 2>&1 | tail -n 1)" | tee -a "$OUT/log.txt"
echo "$(date +%T) writing features.h5 on the CPU" | tee -a "$OUT/log.txt"
timeout 30 $PY benchmarks/write_speed.py --images "$WRITE_IMAGES" --dims 64,128 --repeats 1 --work $WORK/ws \
  --out "$OUT/runs/write_speed.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
echo "$(date +%T) the pipeline's own ceiling (an extractor that costs nothing, XFeat-size features)" | tee -a "$OUT/log.txt"
for d in ${DECODE//,/ }; do
  timeout 40 $PY benchmarks/pipeline_overhead.py --images "$IMAGES" --num-images "$N" --copies $(( 2 * COPIES_A )) --size "$SIZE_A" \
    --device "$DEVICE" --decode $d --workers "$FREE_WORKERS" --repeats 2 --work $WORK/free-$d --out "$OUT/runs/free_$d.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
done
for spec in "$SIZE_A $COPIES_A" "$SIZE_B $COPIES_B"; do
  set -- $spec
  for f in ${FEATURES//,/ }; do
    left=$(( DEADLINE_S - ($(date +%s) - start) )); [ "$left" -gt "$PER_RUN_S" ] && left=$PER_RUN_S
    if [ "$left" -lt 15 ]; then echo "time is up: $f $1 not run" | tee -a "$OUT/log.txt"; continue; fi
    echo "$(date +%T) $f $1" | tee -a "$OUT/log.txt"
    timeout "$left" $PY benchmarks/extraction_profile.py --features "$f" --images "$IMAGES" --num-images "$N" \
      --copies "$2" --size "$1" --device "$DEVICE" --max-keypoints 4096 --decode $DECODE --no-before --min-seconds 0.5 \
      --work "$WORK/$f-$1" --out "$OUT/runs/profile_${f}_$1.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
  done
done
$PY benchmarks/merge_profiles.py "$OUT/runs" "$OUT/round7_speed.json" "$OUT/round7_speed.md" \
  --extra write_speed="$OUT/runs/write_speed.json" --extra free_cpu="$OUT/runs/free_cpu.json" \
  --extra free_gpu="$OUT/runs/free_gpu.json" >/dev/null 2>>"$OUT/log.txt"
cat "$OUT/round7_speed.md"
echo "$(date +%T) done in $(( $(date +%s) - start )) s" | tee -a "$OUT/log.txt"
