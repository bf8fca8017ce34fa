"""``selfdesc match``: match the pairs of a pair file into an hloc-compatible matches.h5.

    selfdesc match --features features.h5 --pairs pairs.txt --out matches.h5
        [--ratio R | --matcher NAME|FILE] [--verify none|fundamental|homography] [--verify-threshold PX]
        [--device cpu|cuda] [--batch-size B] [--viz DIR --viz-pairs N [--images DIR]]

Mutual nearest neighbours (with ``--ratio``: Lowe's ratio test both ways), or with ``--matcher``
a trained attention matcher (``default``: the shipped one for the default features; or a file
from ``selfdesc train-matcher`` / ``export-weights``). ``--verify`` adds
``inliers0`` (RANSAC inliers) to every pair. Resumable and atomic like ``selfdesc extract``.
``--viz`` draws the first N pairs (inliers green, outliers red).

Pair file: one pair per line, ``name0 name1`` (image names as stored in features.h5, i.e. paths
relative to the extracted folder); ``#`` starts a comment; further columns are ignored (as in hloc).
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "match", "match the image pairs of a pair list into matches.h5",
        "selfdesc match --features features.h5 --pairs pairs.txt --out matches.h5 --verify fundamental", __doc__,
    )
    p.add_argument("--features", required=True, help="features.h5 from `selfdesc extract`")
    p.add_argument("--pairs", required=True, help="pair file (`selfdesc pairs`)")
    p.add_argument("--out", required=True, help="output matches.h5 (created or completed)")
    p.add_argument("--ratio", type=float, default=None, help="Lowe ratio test on descriptor distances, e.g. 0.9 (default: plain mutual NN)")
    p.add_argument("--matcher", default=None, help="trained matcher: shipped name (default) or file (default: mutual nearest neighbours)")
    p.add_argument("--verify", default="none", choices=["none", "fundamental", "homography"], help="geometric verification (default none)")
    p.add_argument("--verify-threshold", type=float, default=2.0, help="RANSAC inlier threshold in pixels (default 2)")
    p.add_argument("--verify-backend", default="opencv", choices=["opencv", "poselib"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--batch-size", type=int, default=None, help="pairs per matching call (default: 1 on cpu, 16 on cuda)")
    p.add_argument("--viz", default=None, metavar="DIR", help="write match images of the first --viz-pairs pairs here")
    p.add_argument("--viz-pairs", type=int, default=10, help="how many pairs --viz draws (default 10)")
    p.add_argument("--images", default=None, help="image folder for --viz (default: the folder recorded in features.h5)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.cli.common import check_output_dir, check_output_file, positive
    from selfdesc.device import check_device
    from selfdesc.pipeline.match import MatchConfig, match_pairs
    from selfdesc.pipeline.pairs import read_pairs, unique_pairs

    device = check_device(args.device)
    positive("--batch-size", args.batch_size)
    check_output_file(args.out)
    if args.viz:
        check_output_dir(args.viz, "--viz")
    pairs = read_pairs(args.pairs)
    config = MatchConfig(
        ratio=args.ratio,
        matcher=args.matcher,
        verify=args.verify,
        verify_threshold=args.verify_threshold,
        verify_backend=args.verify_backend,
        batch_size=args.batch_size or (16 if device == "cuda" else 1),
        progress=not args.quiet,
    )
    s = match_pairs(args.features, pairs, args.out, config, device=device, source=args.pairs)
    inl = f", {s.mean_inliers:.1f} inliers" if s.mean_inliers is not None else ""
    print(f"{args.out}: {s.num_pairs} pairs ({s.num_skipped} already there, {s.num_matched} matched in {s.seconds:.1f} s; mean {s.mean_matches:.1f} matches{inl})")
    if args.viz:
        from selfdesc.pipeline.h5io import FeatureFile
        from selfdesc.viz.matches import visualize_pairs

        root = args.images
        if root is None:
            with FeatureFile(args.features) as ff:
                root = ff.attrs.get("image_root")
        if not root:
            from selfdesc.errors import ConfigError

            raise ConfigError("--viz needs --images DIR (features.h5 records no image folder)")
        written = visualize_pairs(args.features, args.out, root, args.viz, unique_pairs(pairs)[: max(0, args.viz_pairs)])
        print(f"{args.viz}: {len(written)} match images")
    return 0
