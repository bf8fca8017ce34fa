#!/usr/bin/env bash
# GPU machine: pair-generation speed on real training photos (.carry/train-sample = first 200 of shard-a).
set -uo pipefail
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
python3 benchmarks/pair_generation.py --device cuda --images .carry/train-sample --num-images 200 --batch 64 --iters 50 --out $OUT/pairgen_cuda.json
