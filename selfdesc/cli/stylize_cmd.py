"""``selfdesc stylize``: write stylized copies of training images (a mirror tree of JPEGs)."""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    from selfdesc.stylize.base import ALIASES, available_stylizers

    p = add_command(
        sub, "stylize", "write N stylized copies of every training image (night, dusk, fog, style transfer, ...)",
        "selfdesc stylize --images my_photos/ --out my_photos_stylized --copies 12 --styles mixed",
        "Writes <out>/<relative folder>/<stem>_stKK.jpg for K = 0..copies-1; copy K uses the K-th "
        "style of --styles in turn. Existing copies are kept (resume) unless --overwrite.",
    )
    p.add_argument("--images", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="output folder (mirror tree of the image folder)")
    p.add_argument("--copies", type=int, default=12, help="stylized copies per image (default 12)")
    p.add_argument(
        "--styles",
        default="mixed",
        help=(
            "comma-separated stylizers, used in turn for the copies: built-ins "
            f"{', '.join(available_stylizers())} (aliases {', '.join(f'{a}={n}' for a, n in sorted(ALIASES.items()))}) "
            "or path/to/module.py:ClassName (default: mixed)"
        ),
    )
    p.add_argument("--style-bank", default=None, help="folder of style images (needed by lab_transfer, histogram_match)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quality", type=int, default=95, help="JPEG quality of the copies (1-100)")
    p.add_argument("--overwrite", action="store_true", help="rewrite copies that already exist")
    p.set_defaults(handler=run_stylize)


def run_stylize(args: argparse.Namespace) -> int:
    from selfdesc.errors import ConfigError
    from selfdesc.stylize.base import load_stylizer
    from selfdesc.stylize.offline import stylize_folder
    from selfdesc.stylize.style_bank import StyleBank

    specs = [s.strip() for s in args.styles.split(",") if s.strip()]
    if not specs:
        raise ConfigError("--styles is empty")
    bank = StyleBank(args.style_bank) if args.style_bank else None
    stylizers = [load_stylizer(s, style_bank=bank) for s in specs]
    summary = stylize_folder(
        args.images,
        args.out,
        stylizers,
        copies_per_image=args.copies,
        seed=args.seed,
        overwrite=args.overwrite,
        jpeg_quality=args.quality,
    )
    print(
        f"{summary.images} images: {summary.written} copies written, {summary.existing} already there, "
        f"{len(summary.failed)} unreadable images skipped -> {summary.out_dir}"
    )
    return 0
