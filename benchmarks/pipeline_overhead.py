"""The ceiling `selfdesc extract` puts on a fast network: images/s with an extractor that costs nothing.

    python benchmarks/pipeline_overhead.py --images DIR [--num-images 32] [--copies 8] [--size 160x120]
        [--keypoints 4096] [--dim 64] [--batch-size 16] [--workers 1] [--device cpu|cuda] [--decode cpu|gpu]
        [--repeats 2] [--cached-decode] [--work TMP] [--out r.json]

The extractor returns the same random ``--keypoints`` x ``--dim`` features for every image at once
(no network), so the rate is what decoding (small ``--size``: little decoding work), batching,
the device-to-host layout and writing features.h5 allow: images divided by the wall-clock time
of the whole ``extract_features`` call (worker start and finishing the file included). It only
uses ``extract_features`` / ``ExtractConfig`` / ``Extractor``, so the same file measures an older
checkout (``PYTHONPATH=<old checkout>``). The best of ``--repeats`` runs is reported, with the
main thread's CPU time per image (``time.thread_time``) of that run. ``--cached-decode`` takes the
decoding out as well: each worker decodes a photo once and then hands out its cached copy (the
pipeline's ``load_image`` wrapped in a cache), so what is left is the hand-off from the workers,
batching, the device-to-host layout and writing.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from extraction_profile import _size, image_folder  # noqa: E402

from selfdesc.features.base import Extractor  # noqa: E402
from selfdesc.pipeline.extract import ExtractConfig, extract_features, image_names  # noqa: E402


class Free(Extractor):
    """Fixed random features of ``num`` keypoints and ``dim`` dimensions, whatever the image."""

    name = "free"
    default_conf: ClassVar[dict[str, Any]] = {"num": 4096, "dim": 64}

    def _init(self, conf: dict[str, Any]) -> None:
        g = torch.Generator().manual_seed(0)
        self.register_buffer("kpts", torch.rand(conf["num"], 2, generator=g) * 100, persistent=False)
        self.register_buffer("scores", torch.rand(conf["num"], generator=g), persistent=False)
        self.register_buffer("desc", torch.nn.functional.normalize(torch.randn(conf["num"], conf["dim"], generator=g), dim=1), persistent=False)

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [{"keypoints": self.kpts, "scores": self.scores, "descriptors": self.desc}] * images.shape[0]


def cache_decoding() -> None:
    """Make the pipeline decode each photo once per process (workers forked afterwards inherit it)."""
    import selfdesc.pipeline.extract as extract_module

    cached = functools.lru_cache(maxsize=None)(extract_module.load_image)
    extract_module.load_image = lambda path, resize_max=None, size=None: cached(Path(path).resolve(), resize_max=resize_max, size=size)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--num-images", type=int, default=32)
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--size", type=_size, default=(160, 120))
    ap.add_argument("--keypoints", type=int, default=4096)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--decode", default=None, help="cpu or gpu (default: the pipeline's default; not passed to older checkouts)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--cached-decode", action="store_true", help="decode each photo once per worker (no decoding cost)")
    ap.add_argument("--work", default="/tmp/pipeline_overhead")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    root, names = image_folder(Path(args.images), image_names(args.images)[: args.num_images], args.copies, work)
    extractor = Free(num=args.keypoints, dim=args.dim).to(args.device)
    more = {"decode": args.decode} if args.decode else {}
    if args.cached_decode:
        cache_decoding()
    rates, main_ms = [], []
    for _ in range(args.repeats):
        out = work / "f.h5"
        out.unlink(missing_ok=True)
        config = ExtractConfig(size=args.size, batch_size=args.batch_size, num_workers=args.workers, threads=1, progress=False, **more)
        t0, c0 = time.perf_counter(), time.thread_time()
        extract_features(extractor, "free", root, out, config, names=names)
        rates.append(len(names) / (time.perf_counter() - t0))
        main_ms.append(1000 * (time.thread_time() - c0) / len(names))
        out.unlink(missing_ok=True)
    best = max(range(len(rates)), key=rates.__getitem__)
    result = {
        "images": len(names), "size": list(args.size), "keypoints": args.keypoints, "dim": args.dim, "batch_size": args.batch_size,
        "workers": args.workers, "device": args.device, "decode": args.decode, "cached_decode": args.cached_decode,
        "images_per_second": rates, "main_thread_cpu_ms_per_image": main_ms,
    }
    print(
        f"{len(names)} images at {args.size[0]}x{args.size[1]}, {args.keypoints} x {args.dim}-D features, {args.device}, decode {args.decode or 'default'}"
        f"{' (cached)' if args.cached_decode else ''}: best {rates[best]:.1f} images/s (runs: {', '.join(f'{r:.1f}' for r in rates)}), "
        f"main thread CPU {main_ms[best]:.2f} ms/image"
    )
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
