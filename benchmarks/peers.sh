#!/usr/bin/env bash
# Side-by-side peers (issue: foundation). One command:
#   benchmarks/peers.sh DEVICE GRAF_ROOT SYNTH_BASE OUT [FEATURES]
# builds the seeded synthetic benchmark (all base images, max side 640, seed 0), then runs
# `selfdesc eval homography` once per dataset with every feature side by side on DEVICE.
set -euo pipefail
DEVICE=${1:-cpu}
GRAF=${2:-../shared/data/eval/hpatches-graf}
BASE=${3:-../shared/data/eval/synth-base}
OUT=${4:-outputs/bench-peers}
FEATURES=${5:-sift,rootsift,orb,disk,aliked,xfeat,r2d2}
WEIGHTS=${SELFDESC_WEIGHTS_DIR:-../shared/data/weights}
SELFDESC=${SELFDESC:-selfdesc}

if [ ! -f "$OUT/synth/SYNTHETIC.json" ]; then
  $SELFDESC data synth --base "$BASE" --out "$OUT/synth" --seed 0 --max-side 640
fi
$SELFDESC eval homography --dataset hpatches --root "$GRAF" --features "$FEATURES" \
  --weights-dir "$WEIGHTS" --device "$DEVICE" --out "$OUT/graf" --quiet
$SELFDESC eval homography --dataset synth --root "$OUT/synth" --features "$FEATURES" \
  --weights-dir "$WEIGHTS" --device "$DEVICE" --out "$OUT/synth-eval" --quiet
