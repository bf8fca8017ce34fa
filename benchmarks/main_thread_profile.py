"""Where the main thread of ``extract_features`` spends its time per image (cProfile).

    python benchmarks/main_thread_profile.py --images DIR [--num-images 32] [--copies 8] [--size 640x480]
        [--workers 1] [--decode cpu|gpu] [--repeats 2] [--work TMP] [--out r.json]

The extractor costs nothing (``pipeline_overhead.Free``: XFeat-size features) and each worker
decodes a photo once (``--cached-decode`` of ``pipeline_overhead.py``), so the main thread's time
is the pipeline's own: per image, milliseconds of wall-clock time in the loader hand-off
(``DataLoader.__next__``: waiting for workers, unpickling, fetching shared-memory descriptors from
the workers), of which the descriptor fetches (``rebuild_storage_fd``), moving images to the
device (``device_images``), the device-to-host layout (``pack_batch``) and handing batches to the
writer (``BackgroundWriter.add``); and the main thread's CPU time (``time.thread_time``). The run
with the least main-thread CPU of ``--repeats`` (after a warm-up run) is reported. Only public
names: ``PYTHONPATH=<old checkout>`` measures an older pipeline.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_profile import _size, image_folder  # noqa: E402
from pipeline_overhead import Free, cache_decoding  # noqa: E402

import selfdesc.pipeline.extract as extract_module  # noqa: E402
from selfdesc.pipeline.extract import ExtractConfig, extract_features, image_names  # noqa: E402

#: reported name -> profiled function name
PARTS = {"loader": "__next__", "fd_fetch": "rebuild_storage_fd", "device_images": "device_images", "pack_batch": "pack_batch", "writer_add": "add"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--num-images", type=int, default=32)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--size", type=_size, default=(640, 480))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--work", default="/tmp/main_thread_profile")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    root, names = image_folder(Path(args.images), image_names(args.images)[: args.num_images], args.copies, work)
    cache_decoding()
    extractor = Free().to(args.device)
    runs = []
    for k in range(args.repeats + 1):
        out = work / "f.h5"
        out.unlink(missing_ok=True)
        config = ExtractConfig(size=args.size, batch_size=16, num_workers=args.workers, threads=1, progress=False)
        prof = cProfile.Profile()
        t0, c0 = time.perf_counter(), time.thread_time()
        prof.enable()
        extract_features(extractor, "free", root, out, config, names=names)
        prof.disable()
        wall, cpu = time.perf_counter() - t0, time.thread_time() - c0
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        per_image = {part: 1000 * sum(v[3] for key, v in stats.items() if key[2] == fn) / len(names) for part, fn in PARTS.items()}
        if k > 0:  # the first run is a warm-up
            runs.append({"wall_ms": 1000 * wall / len(names), "main_cpu_ms": 1000 * cpu / len(names), **per_image})
    best = min(runs, key=lambda r: r["main_cpu_ms"])
    print(
        f"{extract_module.__file__}: {len(names)} images at {args.size[0]}x{args.size[1]}, {args.workers} worker(s), cached decoding; "
        f"ms per image: wall {best['wall_ms']:.2f}, main-thread CPU {best['main_cpu_ms']:.2f}; main-thread wall in: "
        + ", ".join(f"{part} {best[part]:.2f}" for part in PARTS)
    )
    if args.out:
        Path(args.out).write_text(json.dumps({"images": len(names), "size": list(args.size), "workers": args.workers, "runs": runs, "best": best}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
