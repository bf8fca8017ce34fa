"""End-to-end extraction throughput (images/s) of ``selfdesc extract``'s pipeline.

    python benchmarks/extraction_throughput.py --features sift,r2d2 --images DIR --size 640x480 \\
        [--num-images N] [--device cuda] [--workers 4] [--max-keypoints N] --work TMPDIR --out result.json
    torchrun --nproc_per_node 2 benchmarks/extraction_throughput.py ... --device cuda   # one GPU per rank

Every image is decoded and resized to exactly ``--size`` (W x H; upscaled when smaller) by
the DataLoader workers, features are extracted and written to an HDF5 file in ``--work``
(deleted afterwards): the measured rate is the whole pipeline's steady state (the first
image of each rank excluded), summed over ranks under torchrun. ``--features`` entries are
feature names or ``label=MODEL_FILE`` (e.g. ``hndesc=training-runs/x/checkpoints/last.pt``).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

from selfdesc.api import load
from selfdesc.distributed import barrier, dist_info
from selfdesc.pipeline.extract import ExtractConfig, extract_features, image_names
from selfdesc.pipeline.h5io import FeatureFile


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def run_one(label: str, spec: str, names: list[str], args: argparse.Namespace, size: tuple[int, int]) -> dict:
    rank, world, local_rank = dist_info()
    device = f"cuda:{local_rank}" if args.device == "cuda" else "cpu"
    if args.device == "cuda":
        torch.cuda.set_device(local_rank)
    extractor = load(spec, device=device, weights_dir=args.weights_dir, max_keypoints=args.max_keypoints)
    out = Path(args.work) / f"{label}_{size[0]}x{size[1]}.h5"
    config = ExtractConfig(size=size, batch_size=args.batch_size, num_workers=args.workers, checkpoint_every=10**9, progress=False)
    s = extract_features(extractor, label, args.images, out, config, names=names)
    result = {"images_per_second": s.images_per_second, "num_images": s.num_extracted, "seconds": s.seconds}
    if rank == 0:
        with FeatureFile(out) as ff:
            result["mean_keypoints"] = sum(len(ff.read(n, descriptors=False)["keypoints"]) for n in names) / len(names)
        out.unlink()
    barrier()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="comma-separated names or label=MODEL_FILE")
    ap.add_argument("--images", required=True)
    ap.add_argument("--size", required=True, action="append", type=_size, help="W x H, repeatable")
    ap.add_argument("--num-images", type=int, default=None, help="first N images of the folder (sorted)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--workers", type=int, default=None, help="default: the pipeline's default")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the pipeline's default on the device")
    ap.add_argument("--max-keypoints", type=int, default=None)
    ap.add_argument("--weights-dir", default=None)
    ap.add_argument("--work", required=True, help="folder for the temporary feature files (shared by all ranks)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    rank, world, _ = dist_info()
    names = image_names(args.images)[: args.num_images]
    Path(args.work).mkdir(parents=True, exist_ok=True)
    device_name = torch.cuda.get_device_name(0) if args.device == "cuda" else f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"
    report = {
        "device": args.device,
        "device_name": device_name,
        "world_size": world,
        "images": args.images,
        "num_images": len(names),
        "workers_per_rank": args.workers,
        "max_keypoints": args.max_keypoints,
        "torch": torch.__version__,
        "results": {},
    }
    for entry in [f.strip() for f in args.features.split(",") if f.strip()]:
        label, _, spec = entry.partition("=")
        for size in args.size:
            key = f"{size[0]}x{size[1]}"
            r = run_one(label, spec or label, names, args, size)
            report["results"].setdefault(label, {})[key] = r
            if rank == 0:
                print(f"{label:10s} {key:>9s} x{world} {args.device}: {r['images_per_second']:.2f} images/s ({r['mean_keypoints']:.0f} keypoints)", flush=True)
    if rank == 0:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
