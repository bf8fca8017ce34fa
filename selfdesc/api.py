"""The Python API in two calls: ``selfdesc.load`` an extractor, ``selfdesc.match`` two feature sets.

    import selfdesc
    extractor = selfdesc.load("sift", max_keypoints=2048)      # or "hndesc", or "model.pt"
    f0 = extractor.extract(image0)                              # numpy H x W [x 3] or tensor
    f1 = extractor.extract(image1)
    matches, scores = selfdesc.match(f0, f1, ratio=0.9)         # (K, 2) indices into f0 / f1

``f["keypoints"]`` are ``(N, 2)`` ``(x, y)`` pixel-centre coordinates of the given image,
``f["descriptors"]`` ``(N, D)`` L2-normalised (see :mod:`selfdesc.features.base`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from selfdesc.features import load_extractor, resolve_features
from selfdesc.features.base import Extractor

def load(name_or_path: str | Path, device: str = "cpu", weights_dir: str | Path | None = None, **conf: Any) -> Extractor:
    """An extractor in eval mode on ``device``; use ``extractor.extract(image)``.

    Args:
        name_or_path: a registered feature (``selfdesc features``) or a model file of ours.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        weights_dir: folder of peer weight files (DISK, ALIKED, XFeat, R2D2).
        **conf: extractor options (``max_keypoints``, ``resize_max``, ...).
    """
    return load_extractor(name_or_path, weights_dir=weights_dir, device=device, **conf)


def _descriptors(f: Mapping[str, Any] | np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    return f["descriptors"] if isinstance(f, Mapping) else f


def match(
    f0: Mapping[str, Any] | np.ndarray | torch.Tensor,
    f1: Mapping[str, Any] | np.ndarray | torch.Tensor,
    ratio: float | None = None,
    device: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest-neighbour matches (optionally with Lowe's ratio test, both ways).

    Args:
        f0, f1: outputs of ``extractor.extract`` (or ``(N, D)`` / ``(M, D)`` descriptors).
        ratio: e.g. ``0.9``; ``None`` = plain mutual nearest neighbours.
        device: where to compute (default: where the descriptors are).

    Returns:
        ``(K, 2)`` int64 index pairs ``(i0, i1)`` and ``(K,)`` float32 descriptor similarities.
    """
    from selfdesc.matching import match_mnn

    return match_mnn(_descriptors(f0), _descriptors(f1), ratio=ratio, device=device)


def load_matcher(name_or_path: str | Path, device: str = "cpu") -> Any:
    """A trained attention matcher (see :func:`selfdesc.matching.learned.load_matcher`):
    ``matcher.match(f0, f1)`` returns ``(matches (K, 2) int64, scores (K,))`` like :func:`match`."""
    from selfdesc.matching.learned import load_matcher as _load

    return _load(name_or_path, device=device)


__all__ = ["load", "load_matcher", "match", "resolve_features"]
