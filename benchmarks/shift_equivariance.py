"""Do keypoints follow the image? Translate an image by whole pixels and measure where they land.

    python benchmarks/shift_equivariance.py --features sift,MODEL.pt --image IMG [--shifts 1,0 4,4 8,8]

For each shift ``(dx, dy)`` the image (cropped to 640x480) is translated with OpenCV (nearest
neighbour, so pixel values move exactly), features of both images are matched with mutual nearest
neighbours, and the residual ``kp1 - (kp0 + (dx, dy))`` is summarised: mean over matches within 5 px,
and the fraction of matches within 1 and 3 px. A translation-equivariant detector gives a mean near 0
and the same fractions for every shift; a detector locked to a cell grid of size s is exact for
shifts that are multiples of s and fails in between.
"""
from __future__ import annotations

import argparse

import cv2
import numpy as np
import torch

import selfdesc


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--shifts", nargs="+", default=["1,0", "2,2", "4,4", "8,8", "16,0"])
    p.add_argument("--max-keypoints", type=int, default=2048)
    args = p.parse_args()
    image = cv2.imread(args.image)
    if image is None:
        raise SystemExit(f"{args.image}: unreadable image")
    image = np.ascontiguousarray(image[:480, :640, ::-1])
    print("| feature | shift | matches | mean residual (x, y) | <1 px | <3 px |\n|---|---|---|---|---|---|")
    for name in args.features.split(","):
        ext = selfdesc.load(name, max_keypoints=args.max_keypoints)
        f0 = ext.extract(image)
        for text in args.shifts:
            dx, dy = (float(v) for v in text.split(","))
            moved = cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (image.shape[1], image.shape[0]), flags=cv2.INTER_NEAREST)
            f1 = ext.extract(moved)
            m, _ = selfdesc.match(f0, f1)
            d = f1["keypoints"][m[:, 1]] - (f0["keypoints"][m[:, 0]] + torch.tensor([dx, dy]))
            dist = d.norm(dim=1)
            mean = d[dist < 5].mean(0).tolist() if (dist < 5).any() else [float("nan")] * 2
            print(f"| {name} | ({dx:g}, {dy:g}) | {len(m)} | ({mean[0]:+.2f}, {mean[1]:+.2f}) | {(dist < 1).float().mean():.3f} | {(dist < 3).float().mean():.3f} |")


if __name__ == "__main__":
    main()
