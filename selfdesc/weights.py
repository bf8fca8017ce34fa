"""Where weight files are found.

Peer weights (DISK, ALIKED, XFeat, R2D2) are never shipped with selfdesc. They are read
from a *weights directory*, chosen in this order: the ``weights_dir`` argument
(``--weights-dir``), the ``SELFDESC_WEIGHTS_DIR`` environment variable, then
``../shared/data/weights`` next to the current folder or next to the selfdesc checkout.
Our own trained models ship inside the package (``selfdesc/weights/``).
"""
from __future__ import annotations

import os
from pathlib import Path

from selfdesc.errors import WeightsError

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"
_CHECKOUT = Path(__file__).resolve().parent.parent


def default_weights_dir() -> Path | None:
    """The first existing default weights directory, or ``None``."""
    env = os.environ.get("SELFDESC_WEIGHTS_DIR")
    if env:
        return Path(env)
    for base in (Path.cwd(), _CHECKOUT):
        cand = base.parent / "shared" / "data" / "weights"
        if cand.is_dir():
            return cand
    return None


def weight_file(relative: str, weights_dir: str | Path | None, feature: str) -> Path:
    """Resolve ``relative`` (e.g. ``"disk/depth-save.pth"``) inside the weights directory.

    Raises:
        WeightsError: no weights directory is known, or the file is missing.
    """
    root = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    if root is None:
        raise WeightsError(
            f"feature '{feature}' needs the weight file {relative}, but no weights directory is set "
            "(pass --weights-dir DIR or set SELFDESC_WEIGHTS_DIR)"
        )
    path = root / relative
    if not path.is_file():
        raise WeightsError(f"{path}: missing weight file for feature '{feature}' (check --weights-dir)")
    return path
