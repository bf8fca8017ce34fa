# The runs of GPU round 6 (export before benchmarks/device_round.sh:
#   set -a; source benchmarks/round6_runs.sh; set +a): name:config:overrides joined by +
# (options such as --init-from first: they must come before the key=value overrides).
# Photos: max side 400, JPEG quality 75 (.carry/train-{1..4}), hence data.size [400, 300]; validation
# on the 12 held-out shard-b photos (.carry/val-base). TPR: the fixed method (docs/tpr.md) and the
# paper's three ablations at equal step counts; the matcher for the shipped default features
# (width 192, 5 layers: a model file under 16 MiB). lite2: HNDesc-lite with the dense keypoint head, warm-started
# from the round-5 model (copy training-runs/round5/models/lite_best.pt to $R/data/ first).
V=val.images=${R:-/root/r5}/data/val-base
T=train.steps=${TPR_STEPS:-3000}+method.schedule_steps=${TPR_STEPS:-3000}+data.size=[400,300]+train.num_workers=2+train.log_every=25+train.checkpoint_every=250+train.validate_every=250+val.num_images=6+$V
RUNS="lite2:hndesc_lite_v2:--init-from+${R:-/root/r5}/data/lite_best.pt+data.size=[400,300]+train.validate_every=500+$V
matcher_default:matcher_default:method.features.name=default+data.size=[400,300]+method.hcrops.crop_size=256+method.hcrops.max_zoom_out=1.2+method.matcher.width=192+method.matcher.num_layers=5+train.steps=8000+train.validate_every=500+train.num_workers=3+$V
tpr:tpr_aslfeat:$T
tpr_hard:tpr_aslfeat:$T+method.loss.labels=hard
tpr_nocurr:tpr_aslfeat:$T+method.curriculum.shape=constant
tpr_nosal:tpr_aslfeat:$T+method.loss.saliency=false
${EXTRA_RUNS:-}"
