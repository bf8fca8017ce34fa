"""CPU cost of feature extraction: CPU seconds (``time.process_time``) and wall seconds per image.

    python benchmarks/cpu_cost.py --features xfeat,hndesc-lite=model.pt --images DIR \\
        [--num-images 8] [--size 640x480] [--threads 1] [--max-keypoints 2048] [--weights-dir DIR]

Images are decoded and resized to ``--size`` beforehand; each extractor runs once on the first
image (warm-up, not counted), then on the rest. CPU seconds count every thread of this process
and not the other processes of the machine, so on a shared, busy machine the CPU figure still
compares extractors (the wall figure does not). ``--features`` entries are feature names or
``label=MODEL_FILE``.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import selfdesc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="comma-separated names or label=MODEL_FILE")
    ap.add_argument("--images", required=True)
    ap.add_argument("--num-images", type=int, default=8)
    ap.add_argument("--size", default="640x480", help="W x H")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-keypoints", type=int, default=2048)
    ap.add_argument("--weights-dir", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    w, h = (int(v) for v in args.size.lower().split("x"))
    paths = sorted(p for p in Path(args.images).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".ppm"))[: args.num_images]
    if len(paths) < 2:
        raise SystemExit(f"{args.images}: need at least 2 images")
    images = [np.asarray(Image.open(p).convert("RGB").resize((w, h), Image.BILINEAR)) for p in paths]
    print(f"{len(images) - 1} images of {w}x{h}, {args.threads} thread(s), torch {torch.__version__}")
    for spec in args.features.split(","):
        label, _, path = spec.partition("=")
        extractor = selfdesc.load(path or label, max_keypoints=args.max_keypoints, weights_dir=args.weights_dir)
        extractor.extract(images[0])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        counts = [len(extractor.extract(image)["keypoints"]) for image in images[1:]]
        cpu, wall = (time.process_time() - cpu0) / len(counts), (time.perf_counter() - wall0) / len(counts)
        print(f"{label:14s} cpu {cpu * 1000:7.1f} ms/image   wall {wall * 1000:7.1f} ms/image   keypoints {np.mean(counts):.0f}")


if __name__ == "__main__":
    main()
