"""Features at scale: extract into features.h5, make pair lists, match into matches.h5 (hloc formats).

    from selfdesc.pipeline import extract_features, make_pairs, match_pairs, verify_matches

See ``docs/pipeline.md`` and the ``selfdesc extract | pairs | match`` commands. Submodules are
imported on first use so that ``import selfdesc.pipeline`` stays light.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ExtractConfig": "extract",
    "extract_features": "extract",
    "FeatureFile": "h5io",
    "names_to_pair": "h5io",
    "read_matches": "h5io",
    "make_pairs": "pairs",
    "read_pairs": "pairs",
    "write_pairs": "pairs",
    "MatchConfig": "match",
    "match_pairs": "match",
    "verify_matches": "verify",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"selfdesc.pipeline.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'selfdesc.pipeline' has no attribute '{name}'")


__all__ = sorted(_EXPORTS)
