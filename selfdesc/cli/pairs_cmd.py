"""``selfdesc pairs``: the image pairs to match, as an hloc pair file (``name0 name1`` per line).

    selfdesc pairs --images DIR | --features features.h5 --out pairs.txt
        --mode exhaustive | sequential [--window N] | retrieval [--num-neighbours K] [--index index.npz]

Retrieval uses a global index (``selfdesc.retrieval``): ``--index`` reads one; without it,
one is built from ``--images`` (VLAD of RootSIFT, default options).
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "pairs", "write the list of image pairs to match (exhaustive, sequential or retrieval)",
        "selfdesc pairs --features features.h5 --mode exhaustive --out pairs.txt", __doc__,
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="image folder (names relative to it, sorted)")
    src.add_argument("--features", help="features.h5 (its image names, sorted)")
    p.add_argument("--out", required=True, help="output pair file")
    p.add_argument("--mode", required=True, choices=["exhaustive", "sequential", "retrieval"])
    p.add_argument("--window", type=int, default=5, help="sequential: pair each image with the next N (default 5)")
    p.add_argument("--num-neighbours", type=int, default=10, help="retrieval: K nearest images per image (default 10)")
    p.add_argument("--index", default=None, help="retrieval: global index file (.npz / .h5) from selfdesc.retrieval")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_output_file
    from selfdesc.errors import ConfigError
    from selfdesc.pipeline.extract import image_names
    from selfdesc.pipeline.h5io import FeatureFile
    from selfdesc.pipeline.pairs import make_pairs, write_pairs

    check_output_file(args.out)
    if args.images:
        names = image_names(args.images)
    else:
        with FeatureFile(args.features) as ff:
            names = ff.names
    index = None
    if args.mode == "retrieval":
        from selfdesc.retrieval import GlobalIndex, build_index

        if args.index:
            index = GlobalIndex.load(args.index)
        elif args.images:
            index = build_index(args.images, {})
        else:
            raise ConfigError("--mode retrieval with --features needs --index FILE")
    pairs = make_pairs(names, args.mode, window=args.window, num_neighbours=args.num_neighbours, index=index)
    write_pairs(args.out, pairs)
    print(f"{args.out}: {len(pairs)} pairs of {len(names)} images ({args.mode})")
    return 0
