"""``selfdesc demo``: the README's first command, on images bundled with scikit-image."""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command, parse_features


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub, "demo", "build a small synthetic benchmark from bundled images, compare features, draw matches",
        "selfdesc demo --out outputs/demo",
    )
    p.add_argument("--out", default="outputs/demo", help="output folder")
    p.add_argument("--features", default=None, help="comma-separated features (default: sift,rootsift,orb plus peers whose weights are found)")
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.demo import run_demo

    features = parse_features(args.features) if args.features else None
    run_demo(args.out, features=features, weights_dir=args.weights_dir, device=args.device)
    return 0
