"""``selfdesc data synth|hpatches``: build or fetch evaluation data."""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "data", "build or fetch evaluation datasets (synth, hpatches)",
        "selfdesc data synth --base ../shared/data/eval/synth-base --out outputs/synth --seed 0",
    )
    dsub = p.add_subparsers(dest="data_command", metavar="<dataset>")
    dsub.required = True

    s = add_command(
        dsub, "synth", "build the seeded synthetic HPatches-style benchmark from base images",
        "selfdesc data synth --base ../shared/data/eval/synth-base --out outputs/synth --seed 0",
    )
    s.add_argument("--base", required=True, help="folder of base images")
    s.add_argument("--out", required=True, help="output folder (HPatches layout)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--num-images", type=int, default=None, help="use only the first N base images (sorted)")
    s.add_argument("--max-side", type=int, default=800, help="longest side of image 1 of every sequence")
    s.add_argument("--max-rotation", type=float, default=None, help="largest in-plane rotation in degrees (default 40)")
    s.add_argument("--max-tilt", type=float, default=None, help="largest out-of-plane tilt in degrees (default 55)")
    s.add_argument("--max-scale", type=float, default=None, help="largest zoom factor (default 1.6)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing output folder")
    s.set_defaults(handler=run_synth)

    h = add_command(
        dsub, "hpatches", "download (or unpack from a local copy) HPatches sequences",
        "selfdesc data hpatches --root data/hpatches --from hpatches-sequences-release.tar.gz",
    )
    h.add_argument("--root", required=True, help="destination folder")
    h.add_argument("--from", dest="source", default=None, help="local .tar.gz/.zip archive or extracted folder (no download)")
    h.set_defaults(handler=run_hpatches)


def run_synth(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from selfdesc.datasets.synth import build_synthetic
    from selfdesc.geometry.random_homography import HomographyRanges

    overrides = {"max_rotation_deg": args.max_rotation, "max_tilt_deg": args.max_tilt, "max_scale": args.max_scale}
    ranges = replace(HomographyRanges(), **{k: v for k, v in overrides.items() if v is not None})
    out = build_synthetic(
        args.base,
        args.out,
        seed=args.seed,
        num_images=args.num_images,
        max_side=args.max_side,
        overwrite=args.overwrite,
        homography_ranges=ranges,
    )
    print(f"synthetic benchmark written to {out}")
    return 0


def run_hpatches(args: argparse.Namespace) -> int:
    from selfdesc.datasets.hpatches import prepare_hpatches

    out = prepare_hpatches(args.root, source=args.source)
    print(f"HPatches sequences ready in {out}")
    return 0
