#!/usr/bin/env bash
# GPU machine: TPR training (resumable) and a memory / speed comparison with HNDesc.
#
#   [EXTRA="key=value ..."] bash benchmarks/device_tpr.sh train CONFIG [MINUTES] [STEPS]
#       Trains CONFIG (e.g. configs/tpr_aslfeat.yaml) on .carry/shard-a for at most MINUTES
#       (default 8; the run tool allows 10 per call) into runs/<config name>/ (git-ignored, so it
#       stays on a warm machine): calling it again resumes from checkpoints/last.pt (written
#       every 100 steps). STEPS (default: the config's) also sets method.schedule_steps. Back in
#       $OUT: tpr_run.tar (config.yaml, metrics.csv, and checkpoints/last.pt when small enough),
#       tpr.pt (the exported model, float16 if float32 is over 15 MiB), train.log.
#   bash benchmarks/device_tpr.sh memory [BATCH] [STEPS]
#       Peak GPU memory (torch.cuda.max_memory_allocated) and time per training step (forward,
#       backward, optimiser step, EMA update) of TPR (vgg, aslfeat, swin) and HNDesc (in-batch
#       negatives), each with its config at the same batch size (default 8), images from
#       .carry/shard-a. Back in $OUT: memory.json.
# Needs .carry/shard-a and .whl (kornia wheels), like benchmarks/device_train.sh.
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
MODE=${1:-}

if [ "$MODE" = train ]; then
  CONFIG=${2:?config file}; MINUTES=${3:-8}; STEPS=${4:-}
  RUN=runs/$(basename "$CONFIG" .yaml)
  ARGS="--config $CONFIG --images .carry/shard-a --out $RUN --device cuda train.checkpoint_every=100 train.progress=false"
  [ -n "$STEPS" ] && ARGS="$ARGS train.steps=$STEPS method.schedule_steps=$STEPS"
  [ -f "$RUN/checkpoints/last.pt" ] && ARGS="$ARGS --resume" && echo "resuming $RUN"
  timeout --signal=TERM --kill-after=30 "${MINUTES}m" python3 -m selfdesc train $ARGS ${EXTRA:-} 2>&1 | tee "$OUT/train.log"
  echo "train exit status ${PIPESTATUS[0]} (124: stopped at the time limit; run again to resume)"
  [ -f "$RUN/checkpoints/last.pt" ] || { echo "no checkpoint written"; exit 1; }
  python3 -m selfdesc export-weights "$RUN" /tmp/tpr.pt
  python3 - /tmp/tpr.pt "$OUT/tpr.pt" <<'PY'
import os, sys
import torch
from selfdesc.weights import read_model_file, save_model_file
src, dst = sys.argv[1:]
data = read_model_file(src, "tpr")
state = data["state_dict"]
if os.path.getsize(src) > 15 * 2**20:  # the run tool brings back files of at most 16 MiB
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
save_model_file(dst, method="tpr", conf=data["conf"], state_dict=state, meta=data["meta"])
print(f"model: {dst} ({os.path.getsize(dst) / 2**20:.1f} MiB, step {data['meta'].get('step')})")
PY
  FILES="config.yaml metrics.csv"
  [ "$(stat -c %s "$RUN/checkpoints/last.pt")" -lt $((14 * 1024 * 1024)) ] && FILES="$FILES checkpoints/last.pt"
  tar -C "$RUN" -cf "$OUT/tpr_run.tar" $FILES && echo "tpr_run.tar: $FILES"
  tail -n 3 "$RUN/metrics.csv"
elif [ "$MODE" = memory ]; then
  python3 benchmarks/train_cost.py --device cuda --images .carry/shard-a --batch "${2:-8}" --steps "${3:-20}" \
    --configs tpr_vgg,tpr_aslfeat,tpr_swin,hndesc_r2d2 --out "$OUT/memory.json"
else
  echo "usage: bash benchmarks/device_tpr.sh train CONFIG [MINUTES] [STEPS] | memory [BATCH] [STEPS]"; exit 2
fi
