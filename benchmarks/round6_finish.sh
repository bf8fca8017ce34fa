#!/usr/bin/env bash
# Evaluations at the end of GPU round 6 (FINISH_CMD of benchmarks/device_round.sh; runs in $R/code with
# M=$R/models, D=$R/data, E=$R/eval), every table one run:
#   * the held-out synthetic benchmark (13 base images of .carry/synth-base, §7b protocol) and Strecha pose
#     at 1536x1024 (§15b protocol), for the peers, the shipped default (MNN and + its new matcher),
#     the new lite models and the TPR runs;
#   * extraction speed of XFeat and the new lite model at 640x480 in one run (benchmarks/extraction_profile.py).
# Needs .carry/synth-base and .carry/strecha copied into $D, the peers' weights in $D/weights.
set -uo pipefail
PY=${PY:-python3}; DEVICE=${DEVICE:-cuda}
mkdir -p $E
ls $M
model() { ls $M/$1.pt 2>/dev/null; }
LITE=$(for m in lite2_best lite2_last; do model $m; done | paste -sd,)
TPR=$(for m in tpr_best tpr_last tpr_hard_best tpr_nocurr_best tpr_nosal_best; do model $m; done | paste -sd,)
MATCH=$(model matcher_default_best || model matcher_default_last)
PEERS=${PEERS:-sift,rootsift,disk,aliked,xfeat,r2d2,default}
MARG=(); [ -n "$MATCH" ] && MARG=(--matcher "default=$MATCH")
export SELFDESC_WEIGHTS_DIR=$D/weights
[ -d $E/synth13 ] || $PY -m selfdesc data synth --base $D/synth-base --out $E/synth13 --seed 0 --max-side 640 > /dev/null
echo "$(date +%T) synth"
$PY -m selfdesc eval homography --dataset synth --root $E/synth13 --features $PEERS${LITE:+,$LITE}${TPR:+,$TPR} \
  "${MARG[@]}" --device $DEVICE --out $E/synth --quiet --no-plot 2>&1 | grep -v Warning | tail -n 40
echo "$(date +%T) strecha"
$PY -m selfdesc eval pose --root $D/strecha --format strecha --features $PEERS${LITE:+,$LITE} "${MARG[@]}" \
  --max-keypoints 8192 --device $DEVICE --out $E/strecha --quiet 2>&1 | grep -v Warning | tail -n 30
L=$(model lite2_best)
if [ -n "$L" ] && [ -d $D/speed ]; then
  echo "$(date +%T) speed"
  $PY benchmarks/extraction_profile.py --features xfeat,$L --images $D/speed --num-images 32 --copies 16 \
    --size 640x480 --device $DEVICE --max-keypoints 4096 --bf16 --min-seconds 1 --work /tmp/es6 \
    --out $E/speed_lite.json 2>&1 | grep -v Warning | tail -n 25
fi
echo "$(date +%T) done"
