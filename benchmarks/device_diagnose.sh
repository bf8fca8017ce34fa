#!/usr/bin/env bash
# On the GPU machine: (1) default synthetic benchmark again, with per-pair output;
# (2) the same base images with upright warps (no in-plane rotation) to test rotation sensitivity.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD SELFDESC_WEIGHTS_DIR=.carry/weights
F=sift,rootsift,orb,disk,aliked,xfeat,r2d2
python3 -m selfdesc data synth --base .carry/synth-base --out /tmp/synth --seed 0 --max-side 640 >/dev/null 2>&1
python3 -m selfdesc data synth --base .carry/synth-base --out /tmp/synth-upright --seed 0 --max-side 640 --max-rotation 0 >/dev/null 2>&1
python3 -m selfdesc eval homography --dataset synth --root /tmp/synth --features $F --device cuda --out /tmp/e1 --quiet --no-plot | grep -E "^\| .* \| v \|"
python3 -m selfdesc eval homography --dataset synth --root /tmp/synth-upright --features $F --device cuda --out /tmp/e2 --quiet --no-plot | grep -E "^\| .* \| v \|"
cp /tmp/e1/pairs.json $OUT/synth_pairs.json; cp /tmp/e2/results.md $OUT/upright_results.md; cp /tmp/e2/results.json $OUT/upright_results.json
