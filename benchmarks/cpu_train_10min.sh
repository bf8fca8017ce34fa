#!/bin/bash
# Ten minutes of CPU training on 40 photos (first 40 of shard-a), with the CPU preset that
# `selfdesc train --device cpu` applies, against its starting point (the same seeded initial
# weights: one step at lr 0) on a held-out synthetic benchmark (4 images of shard-b, 40 pairs).
#   [CONFIG=configs/hndesc_lite.yaml] bash benchmarks/cpu_train_10min.sh [OUT_DIR] [MINUTES]      (from the repository root)
# Uses the CPU heavily for MINUTES plus the evaluation (about 10 min on an idle 2-core machine).
set -euo pipefail
OUT=${1:-runs/cpu10}
MINUTES=${2:-10}
CONFIG=${CONFIG:-configs/hndesc_r2d2.yaml}   # e.g. CONFIG=configs/hndesc_lite.yaml
SHARED=${SELFDESC_SHARED:-../shared}/data/train
S="nice -n 10 ${PYTHON:-python} -m selfdesc"
mkdir -p "$OUT/train40" "$OUT/heldout"
ls "$SHARED/shard-a" | sed -n 1,40p | while read -r f; do cp -n "$SHARED/shard-a/$f" "$OUT/train40/"; done
ls "$SHARED/shard-b" | sed -n 1,4p | while read -r f; do cp -n "$SHARED/shard-b/$f" "$OUT/heldout/"; done
$S data synth --base "$OUT/heldout" --out "$OUT/syn" --seed 0 --num-images 4 --max-side 400 --overwrite
rm -rf "$OUT/before" "$OUT/run"
$S train --config "$CONFIG" --images "$OUT/train40" --out "$OUT/before" train.steps=1 train.lr=0 train.progress=false
$S export-weights "$OUT/before" "$OUT/before.pt"
start=$(date +%s)
$S train --config "$CONFIG" --images "$OUT/train40" --out "$OUT/run" --max-minutes "$MINUTES" \
    train.steps=100000 train.log_every=10 train.checkpoint_every=50
echo "training wall time: $(( $(date +%s) - start )) s; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
$S export-weights "$OUT/run" "$OUT/after.pt"
$S eval homography --dataset hpatches --root "$OUT/syn" --split-list all --features "$OUT/before.pt,$OUT/after.pt,sift" \
    --max-keypoints 1000 --out "$OUT/eval-syn" --no-plot --quiet
