#!/usr/bin/env bash
# GPU evaluations of round 7 (session 6), one call on a fresh H200 (~120 s after start):
#   Strecha relative pose (§15b protocol: 1536x1024, <= 8192 keypoints, MNN, OpenCV essential matrix) for
#   SIFT, ALIKED, the shipped default with MNN and with its new matcher (best-on-validation and last
#   checkpoints), and the new lite model; the ScanNet sample (§15d: 640 px, <= 2048 keypoints) likewise.
# Carry: .whl .carry/strecha .carry/scannet .carry/m7 (matcher_best.pt, matcher_last.pt, lite3.pt)
#        .carry/weights-min/aliked. Writes $OUT/{strecha_best,strecha_last,scannet_best,scannet_last}/.
set -uo pipefail
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}; OUT=${OUT:?}
if [ "$DEVICE" = cuda ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
fi
export SELFDESC_WEIGHTS_DIR=$PWD/.carry/weights-min
M=.carry/m7
run() {  # name root format kpts resize features matcher
  echo "$(date +%T) $1"
  timeout ${T:-100} $PY -m selfdesc eval pose --root $2 --format $3 --max-keypoints $4 $5 --features $6 \
    --matcher default=$7 --device $DEVICE --out $OUT/$1 --quiet 2>&1 | grep -v Warning | tail -n 30
}
run strecha_best .carry/strecha strecha 8192 "" sift,aliked,default,$M/lite3.pt $M/matcher_best.pt
run strecha_last .carry/strecha strecha 8192 "" default $M/matcher_last.pt
run scannet_best .carry/scannet pairs 2048 "--resize-max 640" aliked,default,$M/lite3.pt $M/matcher_best.pt
run scannet_last .carry/scannet pairs 2048 "--resize-max 640" default $M/matcher_last.pt
echo "$(date +%T) done"
