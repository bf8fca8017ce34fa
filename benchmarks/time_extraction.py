"""Extraction time per image for several features on one device.

    python benchmarks/time_extraction.py --features sift,disk --images DIR [--device cuda]
        [--weights-dir DIR] [--max-keypoints N] [--repeat 3] --out timing.json

Images are decoded once up front (decoding is not timed); each feature is warmed up on
the first image, then every image is extracted ``--repeat`` times. Reports the median and
mean seconds per image (CUDA synchronised before reading the clock).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from selfdesc.device import sync_device
from selfdesc.features import load_extractor
from selfdesc.io.image import list_images, load_image


def time_feature(name: str, images: list, device: str, weights_dir: str | None, max_keypoints: int | None, repeat: int) -> dict:
    extractor = load_extractor(name, weights_dir=weights_dir, device=device, max_keypoints=max_keypoints)
    for _ in range(2):
        extractor.extract(images[0])
    times, counts = [], []
    for img in images:
        for _ in range(repeat):
            sync_device(device)
            t0 = time.perf_counter()
            pred = extractor.extract(img)
            sync_device(device)
            times.append(time.perf_counter() - t0)
        counts.append(len(pred["keypoints"]))
    return {
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "num_images": len(images),
        "repeat": repeat,
        "mean_keypoints": statistics.fmean(counts),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True)
    ap.add_argument("--images", required=True)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--max-keypoints", type=int, default=None)
    ap.add_argument("--resize-max", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    paths = list_images(args.images)
    images = [load_image(p, resize_max=args.resize_max) for p in paths]
    sizes = sorted({im.size for im in images})
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    report = {"device": args.device, "device_name": device_name, "images": args.images, "sizes": sizes, "features": {}}
    for name in [f.strip() for f in args.features.split(",") if f.strip()]:
        report["features"][name] = time_feature(name, images, args.device, args.weights_dir, args.max_keypoints, args.repeat)
        r = report["features"][name]
        print(f"{name:10s} {args.device}: median {1000 * r['median_s']:.1f} ms/image, mean {1000 * r['mean_s']:.1f} ms ({r['mean_keypoints']:.0f} kpts)", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
