"""Training-pair generation speed: batched torch H-crops vs the per-image OpenCV reference.

    python benchmarks/pair_generation.py --device cpu|cuda --batch 64 --iters 10
        [--images ../shared/data/train/shard-a] [--num-images 256] [--resize-max 640]
        [--crop-size 256] [--synthetic] [--out timing.json]

Images are decoded and resized once up front and stacked into zero-padded batches already on
the device (decoding and host-to-device copies are not timed); source keypoints come from
``random_textured_points`` (2048 per image), computed once, untimed, and shared by both
implementations (``--synthetic``: smooth random 640x480 textures instead of the folder, for
machines without the data). Rows:

* ``torch``: :func:`make_pairs` with those keypoints (crops, checks, resampling, correspondences);
* ``torch+points``: the same, drawing the textured keypoints inside the timed call;
* ``torch+aug``: ``torch`` plus :class:`PhotometricAugment` on A and on B;
* ``opencv-u8`` / ``opencv-f32``: :func:`make_pair_cv` image after image in this process, on
  uint8 (what a CPU loader like HNDesc's warps) and on float32 images.

Each row runs one warm-up batch, then ``--iters`` batches (CUDA synchronised before reading
the clock), and reports pairs per second.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

from selfdesc.device import sync_device
from selfdesc.io.image import list_images, load_image
from selfdesc.methods.parts.augment import PhotometricAugment
from selfdesc.methods.parts.hcrops import HCropsConfig, make_pairs, random_textured_points

from hcrops_cv import make_pair_cv  # benchmarks/hcrops_cv.py, next to this script

DEFAULT_IMAGES = Path(__file__).resolve().parents[2] / "shared" / "data" / "train" / "shard-a"


def synthetic_images(count: int, seed: int) -> list[np.ndarray]:
    """Smooth random ``480 x 640 x 3`` float32 textures (bicubic upsampling of 40 x 30 noise)."""
    rng = np.random.default_rng(seed)
    return [
        np.clip(cv2.resize(rng.random((30, 40, 3), dtype=np.float32), (640, 480), interpolation=cv2.INTER_CUBIC), 0, 1)
        for _ in range(count)
    ]


def make_batches(arrays: list[np.ndarray], batch: int, device: str) -> list[dict]:
    """Zero-padded ``(B, 3, H, W)`` batches with their true sizes, plus the numpy images."""
    batches = []
    for start in range(0, len(arrays) - batch + 1, batch):
        group = arrays[start : start + batch]
        height, width = max(a.shape[0] for a in group), max(a.shape[1] for a in group)
        canvas = torch.zeros(batch, 3, height, width)
        for i, a in enumerate(group):
            canvas[i, :, : a.shape[0], : a.shape[1]] = torch.from_numpy(a).permute(2, 0, 1)
        sizes = torch.tensor([[a.shape[1], a.shape[0]] for a in group])
        batches.append({"images": canvas.to(device), "sizes": sizes.to(device), "numpy": group})
    return batches


def time_rows(batches: list[dict], iters: int, device: str, step: Callable[[dict], tuple[int, float]]) -> dict:
    """Run ``step`` on one warm-up batch then ``iters`` batches; ``step`` returns (valid pairs, valid kpts)."""
    step(batches[0])
    sync_device(device)
    valid = kpts = 0
    t0 = time.perf_counter()
    for i in range(iters):
        v, k = step(batches[i % len(batches)])
        valid, kpts = valid + v, kpts + k
    sync_device(device)
    elapsed = time.perf_counter() - t0
    pairs = iters * len(batches[0]["numpy"])
    return {
        "pairs_per_s": pairs / elapsed,
        "ms_per_batch": 1000.0 * elapsed / iters,
        "valid_fraction": valid / pairs,
        "mean_correspondences": kpts / max(valid, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--images", default=str(DEFAULT_IMAGES))
    ap.add_argument("--num-images", type=int, default=256, help="images loaded (cycled through)")
    ap.add_argument("--resize-max", type=int, default=640)
    ap.add_argument("--crop-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--synthetic", action="store_true", help="random textures instead of --images")
    ap.add_argument("--out", default=None, help="optional JSON report")
    args = ap.parse_args()

    device = args.device
    config = HCropsConfig(crop_size=args.crop_size)
    count = max(args.num_images, args.batch)
    if args.synthetic:
        arrays, source = synthetic_images(count, args.seed), "synthetic 640x480"
    else:
        arrays = [load_image(p, resize_max=args.resize_max).image for p in list_images(args.images)[:count]]
        source = args.images
    batches = make_batches(arrays, args.batch, device)
    if not batches:
        print(f"need at least {args.batch} images in {source}", file=sys.stderr)
        return 2
    generator = torch.Generator(device=device).manual_seed(args.seed)
    for b in batches:
        b["keypoints"] = random_textured_points(b["images"], config.num_source_points, generator, b["sizes"])
        b["keypoints_np"] = [k.cpu().numpy() for k in b["keypoints"]]
        b["u8"] = [(a * 255.0 + 0.5).astype(np.uint8) for a in b["numpy"]]
    augment = PhotometricAugment().to(device)

    def torch_step(b: dict, with_points: bool = False, with_aug: bool = False) -> tuple[int, float]:
        kps = None if with_points else b["keypoints"]
        out = make_pairs(b["images"], kps, config=config, generator=generator, image_sizes=b["sizes"])
        if with_aug:
            out["A"], out["B"] = augment(out["A"], generator), augment(out["B"], generator)
        return int(out["pair_valid"].sum()), float(out["valid"].sum())

    rng = np.random.default_rng(args.seed)

    def cv_step(b: dict, key: str) -> tuple[int, float]:
        valid = kpts = 0
        for img, kps in zip(b[key], b["keypoints_np"]):
            out = make_pair_cv(img, kps, config, rng)
            valid += int(out["pair_valid"])
            kpts += float(out["valid"].sum())
        return valid, kpts

    rows = {
        "torch": lambda b: torch_step(b),
        "torch+points": lambda b: torch_step(b, with_points=True),
        "torch+aug": lambda b: torch_step(b, with_aug=True),
        "opencv-u8": lambda b: cv_step(b, "u8"),
        "opencv-f32": lambda b: cv_step(b, "numpy"),
    }
    device_name = (
        torch.cuda.get_device_name(0) if device == "cuda" else f"{platform.processor() or platform.machine()}"
    )
    report = {
        "device": device,
        "device_name": device_name,
        "torch_threads": torch.get_num_threads(),
        "cv2_threads": cv2.getNumThreads(),
        "batch": args.batch,
        "iters": args.iters,
        "images": source,
        "num_images": len(batches) * args.batch,
        "crop_size": args.crop_size,
        "rows": {},
    }
    print(
        f"device {device} ({device_name}), torch threads {report['torch_threads']}, "
        f"cv2 threads {report['cv2_threads']}, batch {args.batch}, iters {args.iters}, "
        f"{report['num_images']} images, crop {args.crop_size}"
    )
    print(f"{'method':14s} {'where':5s} {'pairs/s':>9s} {'ms/batch':>9s} {'valid':>6s} {'kpts/pair':>9s}")
    for name, step in rows.items():
        where = "cpu" if name.startswith("opencv") else device
        r = time_rows(batches, args.iters, device, step)
        report["rows"][name] = {"where": where, **r}
        print(
            f"{name:14s} {where:5s} {r['pairs_per_s']:9.1f} {r['ms_per_batch']:9.1f} "
            f"{r['valid_fraction']:6.3f} {r['mean_correspondences']:9.1f}",
            flush=True,
        )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
