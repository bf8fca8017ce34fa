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

from selfdesc.errors import ConfigError
from selfdesc.features.base import Extractor

#: method (or ``"method:backbone"``) stored in one of our model files -> the feature extractor that runs it
METHOD_FEATURES: dict[str, str] = {"hndesc": "hndesc", "hndesc:lite": "hndesc-lite", "residual": "residual-sift", "tpr": "tpr"}


def resolve_features(name_or_path: str | Path) -> tuple[str, dict[str, Any]]:
    """A registered feature name, or a model file of ours -> ``(feature name, extra options)``.

    A model file (``selfdesc export-weights``, or a training checkpoint) gives the feature of
    its method with ``checkpoint=path``.

    Raises:
        ConfigError: neither a registered name nor an existing file.
        WeightsError: a file that is not a model of a method with a feature extractor.
    """
    from selfdesc.features import REGISTRY, available_features, model_feature

    text = str(name_or_path)
    if text in REGISTRY:
        return text, {}
    path = Path(text)
    if not path.is_file():
        raise ConfigError(f"unknown feature '{text}': not a registered name ({', '.join(available_features())}) nor a model file")
    from selfdesc.errors import WeightsError
    from selfdesc.weights import read_model_file

    model = read_model_file(path)
    feature = model_feature(model, METHOD_FEATURES)
    if feature is None or feature not in REGISTRY:
        raise WeightsError(f"{path}: holds a '{model['method']}' model, which has no feature extractor")
    return feature, {"checkpoint": str(path)}


def load(name_or_path: str | Path, device: str = "cpu", weights_dir: str | Path | None = None, **conf: Any) -> Extractor:
    """An extractor in eval mode on ``device``; use ``extractor.extract(image)``.

    Args:
        name_or_path: a registered feature (``selfdesc features``) or a model file of ours.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        weights_dir: folder of peer weight files (DISK, ALIKED, XFeat, R2D2).
        **conf: extractor options (``max_keypoints``, ``resize_max``, ...).
    """
    from selfdesc.features import load_extractor

    feature, extra = resolve_features(name_or_path)
    return load_extractor(feature, weights_dir=weights_dir, device=device, **{**extra, **conf})


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


__all__ = ["METHOD_FEATURES", "load", "load_matcher", "match", "resolve_features"]
