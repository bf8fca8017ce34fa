# The runs of GPU round 8 (session 7; export before benchmarks/device_round.sh:
#   set -a; R=/root/r8; source benchmarks/round8_runs.sh; set +a).
# lite2: HNDesc-lite v2 resumed from round 7's optimizer checkpoint (step 6000; carry it as .carry/run-lite2),
#   on all four photo parts, now with validation on real pairs too (issue 11, item 3): Strecha
#   fountain-P11 relative pose at 1024 px, so best.pt is picked on mma@1+3+pose_auc@5 and fountain-P11
#   is no longer held out for this run's checkpoints.
# matcher_lite: the attention matcher for the shipped `default` (HNDesc-lite since session 6), from scratch,
#   width 192, 5 layers, up to 2048 keypoints per crop (the r2d2 matcher of round 7 saw 1024), wider
#   homographies (zoom-out 1.5, crops of 288 px).
# Overrides are separated by | (SEP) because the validation score itself holds a +.
SEP='|'
V=val.images=${R:-/root/r8}/data/val-base
P="val.pose_root=${R:-/root/r8}/data/strecha|val.pose_scenes=fountain-P11|val.pose_resize_max=1024|val.pose_max_keypoints=4096|val.score=mma@1+3+pose_auc@5"
RUNS="lite2:hndesc_lite_v2:train.num_workers=6|train.steps=${LITE_STEPS:-200000}|$V|$P
matcher_lite:matcher_default:method.features.name=default|method.features.max_keypoints=2048|data.size=[400,300]|method.hcrops.crop_size=288|method.hcrops.max_zoom_out=1.5|method.matcher.width=192|method.matcher.num_layers=5|train.steps=${MATCHER_STEPS:-5000}|train.validate_every=${MATCHER_VAL:-500}|train.num_workers=8|$V
${EXTRA_RUNS:-}"
