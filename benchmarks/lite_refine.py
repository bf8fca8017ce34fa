"""MMA of HNDesc-lite models with each sub-pixel refinement, on HPatches-layout homography pairs.

    python benchmarks/lite_refine.py --models A.pt,B.pt --root ../shared/data/eval/hpatches-graf
        [--refine softargmax,quadratic,none] [--max-keypoints 2048]

Mutual-nearest-neighbour matches, MMA at 1/2/3 px (pair-weighted, one-directional reprojection
error, as ``selfdesc eval homography``) and the fraction of keypoints off the integer grid (> 0.05 px).
The keypoints are refined on the heatmap, so the refinement changes MMA@1 but not the matches' count
much; use it to pick the extractor's ``refine`` for a trained model.
"""
from __future__ import annotations

import argparse

import numpy as np

import selfdesc
from selfdesc.datasets.hpatches import load_hpatches
from selfdesc.eval.mma import match_errors
from selfdesc.io.image import load_image


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--refine", default="softargmax,quadratic,none")
    p.add_argument("--max-keypoints", type=int, default=2048)
    args = p.parse_args()
    pairs = load_hpatches(args.root)
    print("| model | refine | MMA@1 | MMA@2 | MMA@3 | #matches | off-grid |\n|---|---|---|---|---|---|---|")
    for model in args.models.split(","):
        for refine in args.refine.split(","):
            ext = selfdesc.load(model, max_keypoints=args.max_keypoints, refine=refine)
            cache: dict = {}
            acc, counts, offgrid = {1: [], 2: [], 3: []}, [], []
            for pair in pairs:
                feats = []
                for path in (pair.image0, pair.image1):
                    if path not in cache:
                        cache[path] = ext.extract(load_image(path).image)
                    feats.append(cache[path])
                m, _ = selfdesc.match(feats[0], feats[1])
                err = match_errors(feats[0]["keypoints"].numpy(), feats[1]["keypoints"].numpy(), np.asarray(m), pair.H)
                for t in acc:
                    acc[t].append(float((err <= t).mean()) if len(err) else 0.0)
                counts.append(len(err))
                kp = feats[0]["keypoints"].numpy()
                offgrid.append(float((np.abs(kp - np.round(kp)) > 0.05).any(1).mean()))
            row = " | ".join(f"{np.mean(acc[t]):.3f}" for t in acc)
            print(f"| {model} | {refine} | {row} | {np.mean(counts):.0f} | {np.mean(offgrid):.2f} |")


if __name__ == "__main__":
    main()
