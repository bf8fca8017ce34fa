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
  python3 - "${2:-8}" "${3:-20}" "$OUT/memory.json" <<'PY'
import json, sys, time
import torch
from selfdesc.cli.train_cmd import default_config
from selfdesc.config import load_config
from selfdesc.methods import build_method
from selfdesc.training.image_folder import ImageFolder

batch, steps, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
runs = [("tpr_vgg", "tpr"), ("tpr_aslfeat", "tpr"), ("tpr_swin", "tpr"), ("hndesc_r2d2", "hndesc")]
results = {}
for name, method in runs:
    conf = load_config(default_config(method), f"configs/{name}.yaml")
    mc = dict(conf["method"]); mc.pop("name")
    torch.manual_seed(0)
    model = build_method(method, mc).cuda().train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=conf["train"]["lr"])
    data = ImageFolder(".carry/shard-a", size=tuple(conf["data"]["size"]))
    images = torch.stack([data[i]["image"] for i in range(batch)]).cuda()
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(conf["train"]["precision"])

    def step(i):
        with torch.autocast("cuda", dtype=amp, enabled=amp is not None):
            loss = model({"image": images, "index": torch.arange(batch, device="cuda")})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
        if hasattr(model, "after_step"):
            model.after_step(i)

    for i in range(3):
        step(i)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(steps):
        step(3 + i)
    torch.cuda.synchronize()
    results[name] = {
        "batch": batch,
        "crop_size": mc["hcrops"]["crop_size"],
        "precision": conf["train"]["precision"],
        "ms_per_step": 1000 * (time.perf_counter() - t0) / steps,
        "max_memory_allocated_mib": torch.cuda.max_memory_allocated() / 2**20,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    print(name, json.dumps(results[name]))
    del model, opt
    torch.cuda.empty_cache()
json.dump(results, open(out, "w"), indent=1)
PY
else
  echo "usage: bash benchmarks/device_tpr.sh train CONFIG [MINUTES] [STEPS] | memory [BATCH] [STEPS]"; exit 2
fi
