"""``selfdesc index``: global descriptors (VLAD of RootSIFT) of every image of a folder, for retrieval.

    selfdesc index --images DIR --out index.npz [--clusters 64] [--max-keypoints 1000]

The vocabulary is learned on the folder itself. The file (``.npz`` or ``.h5``) holds the image
names relative to DIR, one unit descriptor per image and the vocabulary; load it with
``selfdesc.retrieval.GlobalIndex.load``.
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "index", "build a global-descriptor (VLAD) index of an image folder for retrieval",
        "selfdesc index --images my_photos/ --out index.npz", __doc__,
    )
    p.add_argument("--images", required=True, help="image folder (searched recursively)")
    p.add_argument("--out", required=True, help="output index file (.npz, .h5 or .hdf5)")
    p.add_argument("--clusters", type=int, default=64, help="vocabulary size K; descriptor dim is K x 128 (default 64)")
    p.add_argument("--max-keypoints", type=int, default=1000, help="RootSIFT keypoints per image (default 1000)")
    p.add_argument("--resize-max", type=int, default=640, help="longest image side before extraction (default 640; 0 = full size)")
    p.add_argument("--sample-images", type=int, default=500, help="images whose descriptors train the vocabulary (default 500)")
    p.add_argument("--pca-dim", type=int, default=None, help="PCA-whiten the descriptors to this many dims (default off)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from selfdesc.errors import ConfigError
    from selfdesc.retrieval import build_index

    for name in ("clusters", "max_keypoints", "sample_images"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    out = Path(args.out)
    if out.suffix.lower() not in (".npz", ".h5", ".hdf5"):
        raise ConfigError(f"--out {out}: must end in .npz, .h5 or .hdf5")
    conf = {
        "clusters": args.clusters,
        "max_keypoints": args.max_keypoints,
        "resize_max": args.resize_max or None,
        "sample_images": args.sample_images,
        "pca_dim": args.pca_dim,
        "seed": args.seed,
    }
    index = build_index(args.images, conf, progress=not args.quiet)
    index.save(out)
    m = index.meta
    print(f"{m['num_images']} images indexed, dim {index.dim}, {m['num_skipped']} skipped, {m['seconds']:.1f} s -> {out}")
    return 0
