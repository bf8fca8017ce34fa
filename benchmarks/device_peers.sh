#!/usr/bin/env bash
# Run on the lent GPU machine (see benchmarks/RESULTS.md). Expects .carry/{graf,synth-base,weights}
# and kornia wheels in .whl; writes everything under $OUT.
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee $OUT/gpu.txt
python3 -c "import torch, kornia; print('torch', torch.__version__, 'kornia', kornia.__version__)"
for m in cv2 PIL matplotlib tqdm yaml h5py; do python3 -c "import $m" 2>/dev/null && echo "have $m" || echo "MISSING $m"; done | tee $OUT/modules.txt
export SELFDESC_WEIGHTS_DIR=.carry/weights
python3 benchmarks/time_extraction.py --features disk,aliked,xfeat,r2d2 --images .carry/graf --device cuda --repeat 5 --out $OUT/timing_graf_cuda.json
python3 benchmarks/time_extraction.py --features disk,aliked,xfeat,r2d2 --images .carry/synth-base --resize-max 640 --device cuda --repeat 3 --out $OUT/timing_synth_cuda.json
if python3 -c "import cv2, matplotlib, tqdm, PIL" 2>/dev/null; then
  SELFDESC="python3 -m selfdesc" benchmarks/peers.sh cuda .carry/graf .carry/synth-base /tmp/bench 2>&1 | tail -60
  for d in graf synth-eval; do cp /tmp/bench/$d/results.json $OUT/${d}_results.json; cp /tmp/bench/$d/run.json $OUT/${d}_run.json; cp /tmp/bench/$d/results.md $OUT/${d}_results.md; done
fi
