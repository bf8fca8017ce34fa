#!/usr/bin/env bash
# Issue 13 in one call: where `selfdesc extract`'s time goes before and after batching, images/s
# of the whole pipeline (before / after / bf16), each learned feature's network-only batched
# throughput, and a batch-size sweep, at 640x480 and 1600x1200 (benchmarks/extraction_profile.py).
#
# Run on one H200 (kind nvidia-h200), from the repo root, carrying .whl (kornia wheels),
# .carry/weights (peer weights) and .carry/shard-a (BSDS500 photos, 481x321 JPEGs: decoding costs
# what small JPEGs cost, the network what the target size costs):
#   bash benchmarks/device_extract_speed.sh [FEATURES]
# FEATURES: comma-separated, default xfeat,disk,aliked,default,hndesc-lite; one that cannot be
# built here (e.g. hndesc-lite before it is merged) is recorded as "not run" and skipped.
# Writes $OUT/extract_speed.json, $OUT/extract_speed.md and $OUT/log.txt. With two or more GPUs
# it also runs the torchrun sharding (2 ranks) for XFeat and states images/s per GPU.
# Each (size, feature) is one process, 640x480 for every feature first; each gets at most
# $PER_RUN_S seconds and none starts after $DEADLINE_S seconds (a cut run is missing from the
# report, the others are kept: each run's JSON is written to $OUT/runs/ as soon as it ends).
#
# CPU dry run (tiny; from the repo root of a checkout with ../shared):
#   DEVICE=cpu PY=/work/main/.venv/bin/python IMAGES=../shared/data/train/shard-a N640=3 N1600=2 \
#   COPIES=1 SIZE_A=160x120 SIZE_B=200x150 SWEEP=1,2 SELFDESC_WEIGHTS_DIR=../shared/data/weights \
#   OUT=/tmp/es bash benchmarks/device_extract_speed.sh sift,xfeat,hndesc-lite
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
DEVICE=${DEVICE:-cuda}; PY=${PY:-python3}
if [ "$DEVICE" = cuda ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
export SELFDESC_WEIGHTS_DIR=${SELFDESC_WEIGHTS_DIR:-$PWD/.carry/weights}
OUT=${OUT:-/tmp/extract-speed}; mkdir -p "$OUT"
FEATURES=${1:-xfeat,disk,aliked,default,hndesc-lite}
IMAGES=${IMAGES:-.carry/shard-a}
N640=${N640:-256}; N1600=${N1600:-96}; COPIES=${COPIES:-2}   # 512 images at 640x480, 96 at 1600x1200
SIZE_A=${SIZE_A:-640x480}; SIZE_B=${SIZE_B:-1600x1200}
SWEEP=${SWEEP:-1,8,16,32,64}; SWEEP_FEATURES=${SWEEP_FEATURES:-xfeat,default}
PER_RUN_S=${PER_RUN_S:-150}; DEADLINE_S=${DEADLINE_S:-520}
WORK=/tmp/es-work; mkdir -p $WORK "$OUT/runs"
[ "$DEVICE" = cuda ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
echo "host: $(nproc) cores" | tee -a "$OUT/log.txt"
start=$(date +%s)
for spec in "$SIZE_A $N640 $COPIES" "$SIZE_B $N1600 1"; do
  set -- $spec
  for f in ${FEATURES//,/ }; do
    left=$(( DEADLINE_S - ($(date +%s) - start) )); [ "$left" -gt "$PER_RUN_S" ] && left=$PER_RUN_S
    if [ "$left" -lt 20 ]; then echo "time is up: $f $1 not run" | tee -a "$OUT/log.txt"; continue; fi
    sweep=(); [[ ",$SWEEP_FEATURES," == *",$f,"* && "$1" == "$SIZE_A" ]] && sweep=(--sweep "$SWEEP")
    timeout "$left" $PY benchmarks/extraction_profile.py --features "$f" --images "$IMAGES" --num-images "$2" \
      --copies "$3" --size "$1" --device "$DEVICE" --max-keypoints 4096 --bf16 --min-seconds 1 "${sweep[@]}" \
      --work "$WORK/$f-$1" --out "$OUT/runs/profile_${f}_$1.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
  done
done
NGPU=$( [ "$DEVICE" = cuda ] && nvidia-smi -L | wc -l || echo 0 )
if [ "$NGPU" -ge 2 ]; then  # sharding across GPUs: images/s of 2 ranks, with the new defaults
  timeout 60 $PY -m torch.distributed.run --standalone --nproc_per_node 2 benchmarks/extraction_throughput.py \
    --features xfeat --images "$IMAGES" --size "$SIZE_A" --device cuda --max-keypoints 4096 \
    --work $WORK/tp2 --out "$OUT/runs/torchrun_2gpu.json" 2>&1 | grep -v Warning | tee -a "$OUT/log.txt"
fi
$PY benchmarks/merge_profiles.py "$OUT/runs" "$OUT/extract_speed.json" "$OUT/extract_speed.md" --extra torchrun_2gpu="$OUT/runs/torchrun_2gpu.json"
