# The runs of GPU round 5 (export it before benchmarks/device_round.sh, called device_round5.sh in round 5): name:config:overrides joined by +.
# Photos: max side 400 (benchmarks/downsize_images.py), hence data.size [400, 300]; validation on the 12
# held-out shard-b photos (.carry/val-base).
V=val.images=${R:-/root/r5}/data/val-base
RUNS="lite:hndesc_lite:data.size=[400,300]+train.num_workers=5+$V
lite64:hndesc_lite64:data.size=[400,300]+train.num_workers=5+$V
matcher_sift:matcher_default:method.features.name=sift+data.size=[400,300]+method.hcrops.crop_size=256+method.hcrops.max_zoom_out=1.2+method.matcher.width=192+method.matcher.num_layers=5+train.steps=8000+train.validate_every=500+train.num_workers=4+$V
${EXTRA_RUNS:-}"
