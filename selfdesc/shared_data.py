"""Locate the optional ``../shared/data`` folder (peer weights, published result caches)."""
from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def shared_data_path(relative: str | Path) -> Path | None:
    """``../shared/data/<relative>`` next to the current folder or next to the selfdesc
    checkout, whichever exists first; ``None`` if neither does."""
    for base in (Path.cwd(), _CHECKOUT):
        cand = base.parent / "shared" / "data" / relative
        if cand.exists():
            return cand
    return None
