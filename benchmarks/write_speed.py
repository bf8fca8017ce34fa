"""Milliseconds per image to write features.h5, the old way against the new, on synthetic features.

    python benchmarks/write_speed.py [--images 256] [--keypoints 4096] [--dims 64,128] [--batch 16]
        [--threads 4] [--fp16] [--work DIR] [--out result.json]

* ``parts+merge`` (before, round 6): per image :func:`~selfdesc.pipeline.h5io.feature_group`
  and :class:`~selfdesc.pipeline.h5io.PartedWriter` part files (HDF5, newest format), then the
  merge of the parts into the output (HDF5 object copies);
* ``single copy`` (now): :func:`~selfdesc.pipeline.packed.pack_batch` per batch, then
  :class:`~selfdesc.pipeline.featurestore.FeatureStore` (metadata in one thread, raw bytes by
  ``--threads`` threads), then finishing the file.

Each stage is timed in the calling thread (no background thread: the sum is the CPU cost one
writer thread would carry). Keypoints/scores/descriptors are random, descriptors L2-normalised.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from selfdesc.pipeline.featurestore import FeatureStore
from selfdesc.pipeline.h5io import FEATURES_FORMAT, PartedWriter, feature_group
from selfdesc.pipeline.packed import pack_batch


def _preds(batch: int, keypoints: int, dim: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [
        {
            "keypoints": torch.rand(keypoints, 2, generator=g) * 600,
            "scores": torch.rand(keypoints, generator=g),
            "descriptors": torch.nn.functional.normalize(torch.randn(keypoints, dim, generator=g), dim=1),
        }
        for _ in range(batch)
    ]


def old_way(preds: list[dict[str, torch.Tensor]], n: int, out: Path, fp16: bool) -> dict[str, float]:
    t0 = time.perf_counter()
    parted = PartedWriter(out, FEATURES_FORMAT, "keypoints", {"bench": 1}, checkpoint_every=100)
    for i in range(n):
        parted.add(f"im{i:06d}.jpg", feature_group(preds[i % len(preds)], (1280, 960), fp16))
    parted.checkpoint()
    t1 = time.perf_counter()
    parted.finalize()
    t2 = time.perf_counter()
    return {"write": (t1 - t0) / n, "finish": (t2 - t1) / n}


def new_way(preds: list[dict[str, torch.Tensor]], n: int, out: Path, fp16: bool, threads: int) -> dict[str, float]:
    store = FeatureStore(out, {"bench": 1}, threads=threads)
    b = len(preds)
    pack = write = 0.0
    for start in range(0, n, b):
        t0 = time.perf_counter()
        packed = pack_batch(preds, [(2.0, 2.0)] * b, [(1280, 960)] * b, fp16)
        t1 = time.perf_counter()
        store.write((f"im{start + i:06d}.jpg", packed.arrays(i)) for i in range(min(b, n - start)))
        t2 = time.perf_counter()
        pack, write = pack + t1 - t0, write + t2 - t1
    store.close()
    t3 = time.perf_counter()
    store.finalize()
    return {"pack": pack / n, "write": write / n, "finish": (time.perf_counter() - t3) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--keypoints", type=int, default=4096)
    ap.add_argument("--dims", default="64,128")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--fp16", action="store_true")
    ap.add_argument("--repeats", type=int, default=2, help="alternating old/new runs; the best of each is kept")
    ap.add_argument("--work", default="/tmp/write_speed")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"images": args.images, "keypoints": args.keypoints, "fp16": args.fp16, "threads": args.threads, "results": {}}
    for dim in [int(d) for d in args.dims.split(",")]:
        preds = _preds(args.batch, args.keypoints, dim)
        best: dict[str, dict[str, float]] = {}
        for _ in range(args.repeats):
            for label, fn in (("parts+merge", lambda o: old_way(preds, args.images, o, args.fp16)), ("single copy", lambda o: new_way(preds, args.images, o, args.fp16, args.threads))):
                out = work / "f.h5"
                out.unlink(missing_ok=True)
                shutil.rmtree(work / ".f.h5.parts", ignore_errors=True)
                r = fn(out)
                if label not in best or sum(r.values()) < sum(best[label].values()):
                    best[label] = r
        report["results"][str(dim)] = best
        for label, r in best.items():
            steps = ", ".join(f"{k} {1000 * v:.2f}" for k, v in r.items())
            print(f"{dim}-D {label:12s}: {1000 * sum(r.values()):.2f} ms/image ({steps})", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
