#!/usr/bin/env bash
# Relative-pose AUC and SfM accuracy with GPU features (for the lead; run on the lent GPU machine).
# Expects .carry/strecha (eval/strecha), .carry/scannet_sample (eval/scannet_sample),
# .carry/weights (peer weights) and, when the machine lacks them, kornia/pycolmap/poselib wheels in
# .whl. Writes everything under $OUT. Usage: benchmarks/device_pose.sh [features] (default below).
set -uo pipefail
export PYTHONUNBUFFERED=1
FEATURES=${1:-sift,rootsift,disk,aliked,xfeat,r2d2}
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
for m in torch kornia cv2 h5py pycolmap poselib matplotlib; do python3 -c "import $m" 2>/dev/null && echo "have $m" || echo "MISSING $m"; done | tee $OUT/modules.txt
SD="python3 -m selfdesc"
W="--weights-dir .carry/weights --device cuda --quiet"
# relative pose, full resolution (Strecha 1536x1024, co-visible pairs) and ScanNet sample at 640 px
$SD eval pose --root .carry/strecha --format strecha --features $FEATURES --out $OUT/pose_strecha $W --max-keypoints 8192 2>&1 | tail -40
$SD eval pose --root .carry/scannet_sample --format pairs --features $FEATURES --out $OUT/pose_scannet $W --resize-max 640 --max-keypoints 2048 2>&1 | tail -20
# SfM against GT camera centres (one shared camera per scene, fundamental-matrix RANSAC, COLMAP mapper on the CPU)
$SD eval sfm --root .carry/strecha --features $FEATURES --out $OUT/sfm_strecha $W --max-keypoints 8192 2>&1 | tail -40
# keep the figures and summaries small: drop the h5/database files
find $OUT/sfm_strecha \( -name '*.h5' -o -name '*.db' -o -name 'models' \) -prune -exec rm -rf {} + 2>/dev/null
ls -R $OUT | head -80
