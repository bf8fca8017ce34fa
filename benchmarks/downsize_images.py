"""Copy a folder of training photos, downsized, into halves that fit a device call's carry.

    python benchmarks/downsize_images.py --src ../shared/data/train --out .carry --max-side 400 \
        --quality 85 --parts 2 --exclude-first 12:shard-b

Every image under ``--src`` (recursive, sorted) is resized so its longest side is at most
``--max-side`` (Lanczos; never enlarged), re-encoded as JPEG and written to
``OUT/train-1 .. OUT/train-P`` in turn (image i goes to part ``i % P + 1``), named
``<subfolder>_<stem>.jpg``. ``--exclude-first N:SUB`` leaves out the first N files (sorted) of
subfolder SUB (the validation images of ``prepare_carry.sh``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from PIL import Image

EXTENSIONS = {".jpg", ".jpeg", ".png", ".ppm", ".bmp"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--src", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--max-side", type=int, default=400)
    p.add_argument("--quality", type=int, default=85)
    p.add_argument("--parts", type=int, default=2)
    p.add_argument("--exclude-first", default=None, help="N:SUBFOLDER")
    args = p.parse_args()
    files = sorted(f for f in args.src.rglob("*") if f.suffix.lower() in EXTENSIONS)
    if args.exclude_first:
        n, sub = args.exclude_first.split(":")
        excluded = set(sorted(f for f in files if f.parent.name == sub)[: int(n)])
        files = [f for f in files if f not in excluded]
    parts = [args.out / f"train-{k + 1}" for k in range(args.parts)]
    for d in parts:
        d.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(files):
        im = Image.open(f).convert("RGB")
        s = args.max_side / max(im.size)
        if s < 1:
            im = im.resize((round(im.size[0] * s), round(im.size[1] * s)), Image.LANCZOS)
        im.save(parts[i % args.parts] / f"{f.parent.name}_{f.stem}.jpg", quality=args.quality)
    print(f"{len(files)} images -> {', '.join(str(d) for d in parts)}")


if __name__ == "__main__":
    main()
