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
from typing import Any

from selfdesc.errors import WeightsError
from selfdesc.shared_data import shared_data_path

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"


def default_weights_dir() -> Path | None:
    """The first existing default weights directory, or ``None``."""
    env = os.environ.get("SELFDESC_WEIGHTS_DIR")
    if env:
        return Path(env)
    found = shared_data_path("weights")
    return found if found is not None and found.is_dir() else None


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


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load`` a local weight file on the CPU, tensors and plain containers only (``weights_only``).

    Raises:
        WeightsError: the file cannot be read that way.
    """
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad weight file
        raise WeightsError(f"{path}: cannot load as a weights-only torch checkpoint ({type(exc).__name__})") from None


def load_state_checked(module: Any, state: Any, path: str | Path, allowed_missing: tuple[str, ...] = ()) -> None:
    """``module.load_state_dict(state)``, strict except for ``allowed_missing`` (non-learned buffers).

    Raises:
        WeightsError: naming ``path`` and the first missing / unexpected / mis-shaped keys.
    """
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, got {type(state).__name__}")
    try:
        result = module.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        detail = [line.strip() for line in str(exc).splitlines() if line.strip()][-1]
        raise WeightsError(f"{path}: weights do not fit {type(module).__name__} ({detail})") from None
    missing = [k for k in result.missing_keys if k not in allowed_missing]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"{path}: weights do not fit {type(module).__name__} "
            f"(missing {missing[:3]}, unexpected {list(result.unexpected_keys)[:3]})"
        )
