"""Loading and running a trained attention matcher (``selfdesc.load_matcher``, ``--matcher``).

A matcher file is one of our model files (:func:`selfdesc.weights.read_model_file`) of method
``matcher`` (written by ``selfdesc export-weights`` from a ``selfdesc train-matcher`` run), or
such a run's training checkpoint. Its ``conf`` records the matcher settings and the features it
was trained for (``features``, ``descriptor_dim``). Shipped matchers are
``selfdesc/weights/matcher_<name>.pt``, looked up by ``<name>`` (``default``: for the default
features).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.matching.attention_matcher import AttentionMatcher

FeatureDict = Mapping[str, Any]


def shipped_matchers() -> list[str]:
    """Names of the matchers in ``selfdesc/weights/`` (``matcher_<name>.pt``)."""
    from selfdesc.weights import PACKAGE_WEIGHTS

    return sorted(p.stem[len("matcher_") :] for p in PACKAGE_WEIGHTS.glob("matcher_*.pt"))


def resolve_matcher(name_or_path: str | Path) -> Path:
    """A shipped matcher name or a file path -> the file.

    Raises:
        WeightsError: an unknown name or a missing file (one line).
    """
    from selfdesc.weights import package_model

    text = str(name_or_path)
    path = Path(text)
    if path.is_file():
        return path
    if re.fullmatch(r"[A-Za-z0-9_.-]+", text) and not text.endswith(".pt"):
        shipped = package_model(f"matcher_{text}.pt")
        if shipped.is_file():
            return shipped
        known = ", ".join(shipped_matchers()) or "none shipped yet"
        raise WeightsError(f"unknown matcher '{text}': no file {shipped} (shipped matchers: {known}; or give a matcher file)")
    raise WeightsError(f"{path}: no such matcher file")


def _as_tensor(x: Any, dtype: torch.dtype) -> torch.Tensor:
    return (torch.from_numpy(np.asarray(x)) if not isinstance(x, torch.Tensor) else x).to(dtype)


class LearnedMatcher:
    """A trained :class:`~selfdesc.matching.attention_matcher.AttentionMatcher` with the record of its features.

    Attributes:
        model: the network (eval mode, on ``device``).
        features: the feature name (or model file) it was trained for.
        descriptor_dim: the descriptor dimension it expects.
        source: the file it was read from.
    """

    def __init__(self, model: AttentionMatcher, features: str, source: str | Path, device: str | torch.device = "cpu") -> None:
        self.model = model.eval().to(device)
        self.features = features
        self.descriptor_dim = int(model.conf["descriptor_dim"])
        self.source = str(source)
        self.device = torch.device(device)

    def check_features(self, feature: str) -> None:
        """Warn when ``feature`` is not the feature the matcher was trained for."""
        if str(feature) != self.features:
            warnings.warn(f"matcher {self.source} was trained for features '{self.features}', used with '{feature}'", stacklevel=2)

    def _check_dim(self, desc: torch.Tensor) -> None:
        if desc.ndim != 2 or (desc.shape[0] and desc.shape[1] != self.descriptor_dim):
            raise ConfigError(
                f"matcher {self.source} expects {self.descriptor_dim}-dimensional descriptors "
                f"(trained for features '{self.features}'), got shape {tuple(desc.shape)}"
            )

    @torch.no_grad()
    def match_batch(self, pairs: Sequence[tuple[FeatureDict, FeatureDict]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Match several pairs in one padded call.

        Args:
            pairs: ``(f0, f1)`` feature dicts with ``keypoints`` ``(N, 2)`` pixel ``(x, y)``,
                ``descriptors`` ``(N, D)`` and ``image_size`` ``(W, H)`` (numpy or tensors).

        Returns:
            per pair ``matches0`` ``(N0,)`` int64 (index into f1, -1 unmatched) and ``scores0``
            ``(N0,)`` float32 match probabilities.
        """
        if not pairs:
            return []
        feats = list(pairs)
        for f, g in feats:
            self._check_dim(_as_tensor(f["descriptors"], torch.float32))
            self._check_dim(_as_tensor(g["descriptors"], torch.float32))
        B, D = len(feats), self.descriptor_dim
        n0 = [len(f["keypoints"]) for f, _ in feats]
        n1 = [len(g["keypoints"]) for _, g in feats]
        N, M = max(n0), max(n1)
        data: dict[str, torch.Tensor] = {
            "keypoints0": torch.zeros(B, N, 2), "keypoints1": torch.zeros(B, M, 2),
            "descriptors0": torch.zeros(B, N, D), "descriptors1": torch.zeros(B, M, D),
            "mask0": torch.zeros(B, N, dtype=torch.bool), "mask1": torch.zeros(B, M, dtype=torch.bool),
            "image_size0": torch.zeros(B, 2), "image_size1": torch.zeros(B, 2),
        }
        for b, (f, g) in enumerate(feats):
            for s, feat, n in (("0", f, n0[b]), ("1", g, n1[b])):
                data[f"keypoints{s}"][b, :n] = _as_tensor(feat["keypoints"], torch.float32).reshape(n, 2)
                data[f"descriptors{s}"][b, :n] = _as_tensor(feat["descriptors"], torch.float32).reshape(n, D)
                data[f"mask{s}"][b, :n] = True
                data[f"image_size{s}"][b] = _as_tensor(feat["image_size"], torch.float32).reshape(2)
        if all(n == N for n in n0) and all(m == M for m in n1):
            del data["mask0"], data["mask1"]  # nothing padded: the fastest attention kernels apply
        pred = self.model({k: v.to(self.device) for k, v in data.items()})
        m0, s0 = pred["matches0"].cpu().numpy(), pred["matching_scores0"].float().cpu().numpy()
        return [(m0[b, : n0[b]].astype(np.int64), s0[b, : n0[b]].astype(np.float32)) for b in range(B)]

    def match(self, f0: FeatureDict, f1: FeatureDict) -> tuple[np.ndarray, np.ndarray]:
        """Matches of two ``extract()`` outputs, like :func:`selfdesc.match`: ``(K, 2)`` int64
        index pairs ``(i0, i1)`` sorted by ``i0`` and ``(K,)`` float32 match probabilities."""
        m0, s0 = self.match_batch([(f0, f1)])[0]
        i0 = np.nonzero(m0 >= 0)[0]
        return np.stack([i0, m0[i0]], axis=1).astype(np.int64).reshape(-1, 2), s0[i0]


def load_matcher(name_or_path: str | Path, device: str | torch.device = "cpu") -> LearnedMatcher:
    """A trained matcher in eval mode on ``device``; use ``.match(f0, f1)``.

    Args:
        name_or_path: a shipped matcher (``default``: for the default features) or a matcher
            file / ``train-matcher`` checkpoint.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Raises:
        WeightsError: unknown name, missing file, or a file that is not a matcher (one line).
    """
    from selfdesc.weights import load_state_checked, read_model_file

    path = resolve_matcher(name_or_path)
    data = read_model_file(path, method="matcher")
    conf = data["conf"]
    if not isinstance(conf, dict) or not isinstance(conf.get("matcher"), dict) or "features" not in conf:
        raise WeightsError(f"{path}: matcher file without its 'matcher' / 'features' record")
    try:
        model = AttentionMatcher(conf["matcher"])
    except ConfigError as exc:
        raise WeightsError(f"{path}: {exc}") from None
    load_state_checked(model, data["state_dict"], path)
    return LearnedMatcher(model, str(conf["features"]), path, device)


__all__ = ["LearnedMatcher", "load_matcher", "resolve_matcher", "shipped_matchers"]
