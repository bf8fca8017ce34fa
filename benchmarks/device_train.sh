#!/usr/bin/env bash
# GPU machine: HNDesc training throughput (steps/s, pairs/s, GPU utilisation) on .carry/train-sample.
# Usage: [EXTRA="key=value ..."] bash benchmarks/device_train.sh NUM_GPUS STEPS
set -uo pipefail
export PYTHONUNBUFFERED=1 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
NGPU=${1:-1}; STEPS=${2:-300}
nvidia-smi --query-gpu=name --format=csv,noheader
nvidia-smi --query-gpu=index,utilization.gpu,memory.used --format=csv,noheader -l 1 > $OUT/gpu_util.csv &
SMI=$!
ARGS="--config configs/hndesc_r2d2.yaml --images .carry/train-sample --out /tmp/run --device cuda train.steps=$STEPS train.log_every=25 train.checkpoint_every=100000 train.progress=false ${EXTRA:-}"
START=$(date +%s.%N)
if [ "$NGPU" = 1 ]; then python3 -m selfdesc train $ARGS; else torchrun --standalone --nproc_per_node $NGPU -m selfdesc train $ARGS; fi
END=$(date +%s.%N)
kill $SMI
python3 - "$START" "$END" "$NGPU" "$OUT/gpu_util.csv" <<'PY'
import csv, sys
start, end, ngpu, util = float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = list(csv.DictReader(open("/tmp/run/metrics.csv")))
late = [float(r["steps_per_s"]) for r in rows[2:]] or [float(r["steps_per_s"]) for r in rows]
sps = sum(late) / len(late)
u = [float(l.split(",")[1].strip().split()[0]) for l in open(util) if l.strip()]
busy = [x for x in u if x > 0]
print(f"GPUs {ngpu}: steps/s (after warm-up, per process) {sps:.2f}; pairs/s total {sps * 16 * ngpu:.0f} (batch 16 per GPU); "
      f"GPU util mean over busy samples {sum(busy)/max(1,len(busy)):.0f}% ({len(busy)} samples); wall {end-start:.0f}s; last loss {rows[-1]['loss']}")
PY
cp /tmp/run/metrics.csv $OUT/metrics.csv
