"""``selfdesc sfm``: incremental Structure-from-Motion from a folder of images.

Runs extract -> pairs -> match (+ RANSAC) -> COLMAP database -> incremental mapper (see
:mod:`selfdesc.sfm.pipeline` for the output layout) and prints one summary line::

    registered N/M images, P points, track length T, reprojection error E px
"""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command, add_feature_options, add_resize_option, check_output_dir, parse_features
from selfdesc.device import check_device
from selfdesc.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "sfm", "3D reconstruction (incremental Structure-from-Motion with COLMAP) of an image folder",
        "selfdesc sfm --images my_photos/ --features default --out outputs/sfm --resize-max 1600", __doc__,
    )
    p.add_argument("--images", required=True, help="image folder (searched recursively)")
    add_feature_options(p)
    p.add_argument("--out", required=True, help="output folder (features.h5, matches.h5, database.db, sfm/, summary.json, sfm.png)")
    add_resize_option(p)
    p.add_argument("--pairs", choices=["exhaustive", "sequential"], default="exhaustive", help="which image pairs to match")
    p.add_argument("--window", type=int, default=10, help="neighbours per image with --pairs sequential")
    p.add_argument("--verify", choices=["fundamental", "homography", "colmap"], default="fundamental", help="geometric verification: RANSAC model before import, or COLMAP's own")
    p.add_argument("--camera-mode", choices=["per-image", "single"], default="per-image", help="one camera per image, or one shared camera (same-size images)")
    p.add_argument("--matcher", default=None, help="trained matcher: shipped name (default) or file (default: mutual nearest neighbours)")
    p.add_argument("--min-num-matches", type=int, default=15, help="fewest verified matches for a pair to be used by the mapper")
    p.add_argument("--hloc", default=None, metavar="DIR", help="also export features, pairs, matches and the model in the hloc layout to DIR")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="show COLMAP's log")
    p.set_defaults(handler=run_sfm)


def run_sfm(args: argparse.Namespace) -> int:
    from selfdesc.sfm.pipeline import SfMConfig, reconstruct_images
    from selfdesc.sfm.reconstruct import summary_line

    features = parse_features(args.features)
    if len(features) != 1:
        raise ConfigError(f"--features: sfm takes one feature, got {len(features)} ({args.features})")
    for opt in ("max_keypoints", "resize_max", "window", "min_num_matches"):
        value = getattr(args, opt)
        if value is not None and value < 1:
            raise ConfigError(f"--{opt.replace('_', '-')} must be at least 1, got {value}")
    if args.matcher is not None:  # fail before extraction
        from selfdesc.matching.learned import resolve_matcher

        resolve_matcher(args.matcher)
    config = SfMConfig(
        max_keypoints=args.max_keypoints,
        resize_max=args.resize_max,
        pairs=args.pairs,
        window=args.window,
        device=check_device(args.device),
        weights_dir=args.weights_dir,
        camera_mode=args.camera_mode,
        verify=args.verify,
        min_num_matches=args.min_num_matches,
        matcher=args.matcher,
        progress=not args.quiet,
        verbose=args.verbose,
    )
    out = check_output_dir(args.out)
    if args.hloc is not None:
        check_output_dir(args.hloc, "--hloc")
    rec, record = reconstruct_images(args.images, features[0], out, config)
    if args.hloc is not None:
        from selfdesc.sfm.hloc_export import export_hloc

        export_hloc(
            args.hloc,
            features[0],
            out / "features.h5",
            out / "matches.h5",
            out / "pairs.txt",
            args.pairs,
            model=out / "sfm" if rec is not None else None,
            database=out / "database.db",
            **({"matcher": f"selfdesc-{Path(args.matcher).stem}"} if args.matcher else {}),
        )
    print(summary_line(record["summary"]))
    return 0


__all__ = ["register"]
