"""Peak GPU memory and time per training step of several training configs at one batch size.

    python benchmarks/train_cost.py --configs tpr_aslfeat,tpr_swin,hndesc_r2d2 --images DIR \\
        [--batch 8] [--steps 10] [--device cuda] --out cost.json

Each config (``configs/NAME.yaml``) builds its method with seed 0; one fixed batch of images is
decoded once and reused, so the loader is not timed. A step is forward, loss, backward, optimiser
step and, for TPR, the EMA update of the target branch; three warm-up steps are not timed. On CUDA
the peak is ``torch.cuda.max_memory_allocated`` over the timed steps.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from selfdesc.device import sync_device
from selfdesc.methods import build_method
from selfdesc.training.image_folder import ImageFolder
from selfdesc.training.run import load_run_config


def measure(config: str, images: str, batch: int, steps: int, device: str) -> dict:
    """Cost of ``steps`` training steps of ``configs/<config>.yaml`` at ``batch`` images."""
    conf = load_run_config(f"configs/{config}.yaml", [])
    method_conf = dict(conf["method"])
    name = method_conf.pop("name")
    torch.manual_seed(0)
    model = build_method(name, method_conf).to(device).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=conf["train"]["lr"])
    data = ImageFolder(images, size=tuple(conf["data"]["size"]))
    batch_images = torch.stack([data[i]["image"] for i in range(batch)]).to(device)
    amp = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(conf["train"]["precision"]) if device == "cuda" else None

    def step(i: int) -> None:
        with torch.autocast(device, dtype=amp or torch.float32, enabled=amp is not None):
            loss = model({"image": batch_images, "index": torch.arange(batch, device=device)})["loss"]
        opt.zero_grad(set_to_none=True)
        loss.float().backward()
        opt.step()
        if hasattr(model, "after_step"):
            model.after_step(i)

    for i in range(3):
        step(i)
    sync_device(device)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for i in range(steps):
        step(3 + i)
    sync_device(device)
    result = {
        "method": name,
        "batch": batch,
        "crop_size": method_conf.get("hcrops", {}).get("crop_size"),
        "precision": conf["train"]["precision"] if amp is not None else "fp32",
        "ms_per_step": 1000 * (time.perf_counter() - t0) / steps,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if device == "cuda":
        result["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated() / 2**20
        result["device_name"] = torch.cuda.get_device_name()
        torch.cuda.empty_cache()
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", required=True, help="comma-separated config names in configs/")
    p.add_argument("--images", required=True)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--device", default="cuda")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    results = {}
    for config in args.configs.split(","):
        results[config] = measure(config, args.images, args.batch, args.steps, args.device)
        print(config, json.dumps(results[config]), flush=True)
        with open(args.out, "w") as f:  # rewritten after each config: a time limit keeps what was measured
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
