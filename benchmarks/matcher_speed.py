"""Matching speed of the attention matcher: pairs per second at given keypoint counts.

    python benchmarks/matcher_speed.py [--matcher NAME|FILE] [--device cuda] [--keypoints 1024,2048]
        [--batch 1,8] [--precision fp32|bf16] [--seconds 5] [--threads 1] [--json OUT.json]

Without ``--matcher`` it times a randomly initialised matcher with the default settings
(the speed does not depend on the weights; early exit is off). Inputs are random keypoints in a
640 x 480 image and random unit descriptors, already on the device; a "pair" is one pair of
``N``-point sets. ``--batch B`` matches B pairs per call (padded batches are not needed here).
Also times :meth:`LearnedMatcher.match` end to end (CPU tensors in, numpy out) at batch 1.
"""
from __future__ import annotations

import argparse
import json
import time

import torch

from selfdesc.device import sync_device


def _inputs(batch: int, n: int, dim: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    size = torch.tensor([[640.0, 480.0]]).expand(batch, 2)
    data = {}
    for s in ("0", "1"):
        data[f"keypoints{s}"] = torch.rand(batch, n, 2, generator=g) * size[:, None]
        data[f"descriptors{s}"] = torch.nn.functional.normalize(torch.randn(batch, n, dim, generator=g), dim=-1)
        data[f"image_size{s}"] = size.clone()
    return {k: v.to(device) for k, v in data.items()}


def _timed(fn, device: torch.device, seconds: float) -> tuple[int, float]:
    """Calls of ``fn`` and the seconds they took (after 3 warm-up calls)."""
    for _ in range(3):
        fn()
    sync_device(device)
    calls, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or calls < 3:
        fn()
        calls += 1
        if calls % 8 == 0:
            sync_device(device)
    sync_device(device)
    return calls, time.perf_counter() - t0


def main() -> None:
    from selfdesc.matching.attention_matcher import AttentionMatcher
    from selfdesc.matching.learned import LearnedMatcher, load_matcher

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--matcher", default=None, help="shipped matcher name or file (default: random weights, default settings)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--keypoints", default="1024,2048")
    p.add_argument("--batch", default="1")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--seconds", type=float, default=5.0, help="timing window per setting")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", default=None, help="write the results here too")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.matcher:
        matcher = load_matcher(args.matcher, device=device)
    else:
        matcher = LearnedMatcher(AttentionMatcher(), "random", "random weights", device)
    model = matcher.model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.precision)
    results = []
    for n in [int(x) for x in args.keypoints.split(",")]:
        for batch in [int(x) for x in args.batch.split(",")]:
            data = _inputs(batch, n, matcher.descriptor_dim, device)

            def step() -> None:
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
                    model(data)

            calls, secs = _timed(step, device, args.seconds)
            row = {"keypoints": n, "batch": batch, "pairs_per_s": round(calls * batch / secs, 2), "ms_per_call": round(1000 * secs / calls, 2), "mode": "model"}
            results.append(row)
            print(json.dumps(row), flush=True)
        if dtype is None:
            cpu = {k: v[:1].cpu() for k, v in _inputs(1, n, matcher.descriptor_dim, torch.device("cpu")).items()}
            f0 = {"keypoints": cpu["keypoints0"][0], "descriptors": cpu["descriptors0"][0], "image_size": cpu["image_size0"][0]}
            f1 = {"keypoints": cpu["keypoints1"][0], "descriptors": cpu["descriptors1"][0], "image_size": cpu["image_size1"][0]}
            calls, secs = _timed(lambda: matcher.match(f0, f1), device, args.seconds)
            row = {"keypoints": n, "batch": 1, "pairs_per_s": round(calls / secs, 2), "ms_per_call": round(1000 * secs / calls, 2), "mode": "match()"}
            results.append(row)
            print(json.dumps(row), flush=True)
    meta = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({torch.get_num_threads()} threads)",
        "precision": args.precision,
        "matcher": args.matcher or "random weights, default settings",
        "conf": model.conf,
        "torch": torch.__version__,
    }
    if args.json:
        from selfdesc.io.atomic import write_text_atomic

        write_text_atomic(args.json, json.dumps({"meta": meta, "results": results}, indent=1))
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
