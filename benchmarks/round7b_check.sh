#!/usr/bin/env bash
# GPU check after round 7 (issue 13, third pass), one call of under 120 s on one H200:
#  1. the cause of round 7's crashes: torchvision's decode_jpeg(device="cuda") against selfdesc's
#     decode_jpegs, writing over memory that queued kernels still read (share of reads that saw it);
#  2. the pipeline's own ceiling (an extractor that costs nothing, XFeat-size features, 512 images at
#     640x480, 12 workers), CPU and GPU decoding, and CPU decoding with each photo decoded once per
#     worker (no decoding cost: the hand-off, batching and writing alone) (benchmarks/pipeline_overhead.py);
#  3. hndesc-r2d2 (the default that crashed in round 7), default (HNDesc-lite since session 6), xfeat, disk, aliked at 640x480 (32 photos x 8, batch 16), CPU and GPU decoding: images/s,
#     every image of the file against the same photo extracted alone, and the network alone
#     (benchmarks/pipeline_check.py; exit status 1 when a check fails).
#
# Run from the repo root with carry .whl .carry/weights-min .carry/speed:
#   bash benchmarks/round7b_check.sh
# Writes $OUT/log.txt, $OUT/hazard.json, $OUT/free_{cpu,gpu,cached}.json, $OUT/check.json. About 100 s.
#
# CPU dry run (tiny; from the repo root, with /work/main/.carry):
#   DEVICE=cpu PY=/work/main/.venv/bin/python IMAGES=/work/main/.carry/speed N=3 COPIES=2 SIZE=160x120 \
#   SELFDESC_WEIGHTS_DIR=/work/main/.carry/weights-min FEATURES=xfeat OUT=/tmp/r7b-dry bash benchmarks/round7b_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}; OUT=${OUT:-/tmp/round7b-check}
start=$(date +%s)
mkdir -p "$OUT"
if [ "$DEVICE" = cuda ]; then
  timeout 40 $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/log.txt"
  DECODE=cpu,gpu
else
  export PYTHONPATH=$PWD
  DECODE=cpu
fi
export SELFDESC_WEIGHTS_DIR=${SELFDESC_WEIGHTS_DIR:-$PWD/.carry/weights-min}
FEATURES=${FEATURES:-hndesc-r2d2,default,xfeat,disk,aliked}
IMAGES=${IMAGES:-.carry/speed}; N=${N:-32}; COPIES=${COPIES:-8}; SIZE=${SIZE:-640x480}
WORKERS=${WORKERS:-$(( $(nproc) > 14 ? 12 : 1 ))}
WORK=${WORK:-/tmp/round7b-work}; mkdir -p "$WORK"
echo "host: $(nproc) cores; torchvision: $($PY -c 'import torchvision; print(torchvision.__version__)' 2>&1 | tail -n 1)" | tee -a "$OUT/log.txt"
if [ "$DEVICE" = cuda ]; then
  echo "$(date +%T) nvJPEG overwriting memory still read by queued kernels" | tee -a "$OUT/log.txt"
  timeout 20 $PY benchmarks/pipeline_check.py --hazard --features "" --images "$IMAGES" --num-images 16 --copies 1 \
    --work "$WORK/hazard" --out "$OUT/hazard.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
fi
echo "$(date +%T) the pipeline's own ceiling (an extractor that costs nothing, XFeat-size features)" | tee -a "$OUT/log.txt"
for d in ${DECODE//,/ } cached; do
  if [ $d = cached ]; then how="--decode cpu --cached-decode"; else how="--decode $d"; fi
  timeout 20 $PY benchmarks/pipeline_overhead.py --images "$IMAGES" --num-images "$N" --copies $(( 2 * COPIES )) --size "$SIZE" \
    --device "$DEVICE" $how --workers "$WORKERS" --repeats 2 --work "$WORK/free-$d" --out "$OUT/free_$d.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
done
left=$(( 115 - ($(date +%s) - start) ))
echo "$(date +%T) features against one image at a time ($left s left)" | tee -a "$OUT/log.txt"
timeout "$left" $PY benchmarks/pipeline_check.py --features "$FEATURES" --images "$IMAGES" --num-images "$N" --copies "$COPIES" \
  --size "$SIZE" --device "$DEVICE" --decode $DECODE --workers "$WORKERS" --work "$WORK/check" --out "$OUT/check.json" 2>&1 \
  | grep -v Warning | tee -a "$OUT/log.txt"
status=${PIPESTATUS[0]}
echo "$(date +%T) done in $(( $(date +%s) - start )) s (check exit status $status)" | tee -a "$OUT/log.txt"
exit "$status"
