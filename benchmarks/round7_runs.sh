# The runs of GPU round 7 (session 6; export before benchmarks/device_round.sh:
#   set -a; R=/root/r7; source benchmarks/round7_runs.sh; set +a).
# lite2: HNDesc-lite v2 resumed from round 6's optimizer checkpoint (step 2500; carry it as
#   .carry/run-lite2 = config.yaml + checkpoints/last.pt + metrics.csv); alone with the matcher on the GPU,
#   so more loader workers than in round 6.
# matcher_default: the attention matcher for the shipped `default` features, from scratch (round 6 made
#   118 steps one image at a time; extraction is batched now), width 192, 5 layers (7.6 MB in float16),
#   a cosine schedule over 3000 steps.
V=val.images=${R:-/root/r7}/data/val-base
RUNS="lite2:hndesc_lite_v2:train.num_workers=7+$V
matcher_default:matcher_default:method.features.name=default+data.size=[400,300]+method.hcrops.crop_size=256+method.hcrops.max_zoom_out=1.2+method.matcher.width=192+method.matcher.num_layers=5+train.steps=${MATCHER_STEPS:-3000}+train.validate_every=500+train.num_workers=5+$V
${EXTRA_RUNS:-}"
