"""``selfdesc features``: list the available feature extractors."""
from __future__ import annotations

import argparse

from selfdesc.cli.common import add_command


def register(sub: argparse._SubParsersAction) -> None:
    p = add_command(sub, "features", "list the available features (names for --features)", "selfdesc features")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from selfdesc.features import available_features, extractor_class

    for name in available_features():
        cls = extractor_class(name)
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        print(f"{name:12s} {doc}")
    return 0
