#!/usr/bin/env bash
# Extraction throughput (images/s, whole `selfdesc extract` pipeline) on one GPU and on two
# (torchrun), at 640x480 and 1600x1200, for sift, rootsift, disk, aliked, xfeat, r2d2, hndesc.
#
# Run on the lent machine of kind nvidia-h200-x2 (two GPUs), from the repo root, carrying
# .whl (kornia wheels), .carry/weights (peer weights) and .carry/shard-a (images):
#   bash benchmarks/device_throughput.sh
# Images: the first 64 photos of .carry/shard-a (BSDS500, 481x321,
# so both sizes are upscaled: decoding cost is that of the small JPEGs, network cost that of
# the target size). HNDesc: selfdesc/weights/hndesc_r2d2.pt when shipped, else the training run
# training-runs/hndesc_r2d2/checkpoints/last.pt. Writes $OUT/throughput.json (+ logs).
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD SELFDESC_WEIGHTS_DIR=.carry/weights
OUT=${OUT:-/tmp/throughput-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
HNDESC=selfdesc/weights/hndesc_r2d2.pt
[ -f "$HNDESC" ] || HNDESC=training-runs/hndesc_r2d2/checkpoints/last.pt
FEATURES=${FEATURES:-"sift,rootsift,disk,aliked,xfeat,r2d2,hndesc=$HNDESC"}
IMAGES=${IMAGES:-.carry/shard-a}
WORKERS=${WORKERS:-6}
NGPU=$(nvidia-smi -L | wc -l)
run() {  # run <gpus> <json>: both sizes, 64 images
  local cmd=(python3)
  if [ "$1" -gt 1 ]; then cmd=(python3 -m torch.distributed.run --standalone --nproc_per_node "$1"); fi
  CUDA_VISIBLE_DEVICES=$(seq -s, 0 $(($1 - 1))) timeout 270 "${cmd[@]}" benchmarks/extraction_throughput.py \
    --features "$FEATURES" --images $IMAGES --num-images 64 --size 640x480 --size 1600x1200 --device cuda \
    --workers $WORKERS --max-keypoints 4096 --work "/tmp/tp-work-$1" --out "$2" 2>&1 | tee -a "$OUT/log.txt"
}
run 1 /tmp/tp-1gpu.json
if [ "$NGPU" -ge 2 ]; then
  run 2 /tmp/tp-2gpu.json
else
  echo "only $NGPU GPU: the 2-GPU runs are skipped" | tee -a "$OUT/log.txt"
fi
python3 - "$OUT/throughput.json" /tmp/tp-1gpu.json /tmp/tp-2gpu.json <<'PY'
import json, sys
merged = {}
for path in sys.argv[2:]:
    try:
        r = json.load(open(path))
    except OSError:
        continue  # that run did not finish (see log.txt)
    merged[f"{r['world_size']}gpu"] = r
json.dump(merged, open(sys.argv[1], "w"), indent=2)
for key, entry in sorted(merged.items()):
    for feature, sizes in entry["results"].items():
        print(key, feature, {s: round(v["images_per_second"], 2) for s, v in sizes.items()})
PY
