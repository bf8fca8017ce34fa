#!/usr/bin/env bash
# GPU machine: choose the shipped default model among training checkpoints by MMA@3 on a
# held-out synthetic validation set, then run it side by side with the peers.
#   bash benchmarks/device_compare_default.sh
# Inputs (carry): .carry/ckpts/*.pt (candidate checkpoints), .carry/val-base (held-out base images,
# from ../shared/data/train/shard-b, never trained on), .carry/{graf,synth-base,weights}, .whl.
# Output: $OUT/results.tar.gz (validation, graf and synthetic results, timings) and
# $OUT/hndesc_r2d2.pt (the chosen model file).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD SELFDESC_WEIGHTS_DIR=.carry/weights
SD="python3 -m selfdesc"
R=/tmp/results && mkdir -p $R
nvidia-smi --query-gpu=name --format=csv,noheader | tee $R/gpu.txt
nproc | tee $R/cpu_cores.txt
CANDS=$(ls .carry/ckpts/*.pt | paste -sd,)
$SD data synth --base .carry/val-base --out /tmp/val --seed 1234 --max-side 640
$SD eval homography --dataset synth --root /tmp/val --features "$CANDS" --device cuda --out $R/validation --quiet --no-plot
BEST=$(python3 - "$R/validation/results.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))
for name, r in res.items():
    print(f"{name}: val MMA@3 {r['overall']['mma']['3']:.4f}", file=sys.stderr)
print(max(res, key=lambda n: res[n]["overall"]["mma"]["3"]))
PY
)
echo "best on validation: $BEST"
python3 -c "from selfdesc.weights import export_run; print(export_run('$BEST', 'selfdesc/weights/hndesc_r2d2.pt'))"
cp selfdesc/weights/hndesc_r2d2.pt $OUT/
FEATS=default,sift,rootsift,disk,aliked,xfeat,r2d2
SELFDESC="$SD" bash benchmarks/peers.sh cuda .carry/graf .carry/synth-base /tmp/bench $FEATS 2>&1 | grep -v "^|" | tail -5
for d in graf synth-eval; do mkdir -p $R/$d && cp /tmp/bench/$d/{results.json,run.json,results.md,pairs.json} $R/$d/; done
cat $R/graf/results.md $R/synth-eval/results.md | grep overall
python3 benchmarks/time_extraction.py --features $FEATS --images .carry/graf --device cuda --repeat 3 --out $R/timing_graf_cuda.json
python3 benchmarks/time_extraction.py --features $FEATS --images .carry/synth-base --resize-max 640 --device cuda --repeat 2 --out $R/timing_synth_cuda.json
python3 benchmarks/time_extraction.py --features $FEATS --images .carry/graf --device cpu --repeat 1 --out $R/timing_graf_cpu.json
tar czf $OUT/results.tar.gz -C /tmp results
