"""Match the image pairs of a pair list from a features.h5 into an hloc-compatible matches.h5.

Mutual nearest neighbours on descriptor similarity (optionally Lowe's ratio test, both ways)
with :func:`selfdesc.matching.match_mnn_batched`, or a trained attention matcher
(``MatchConfig.matcher``, :mod:`selfdesc.matching.learned`; scores are match probabilities); on
CUDA several pairs are matched per call (padded). With ``verify``, RANSAC (:mod:`selfdesc.pipeline.verify`) marks the inliers
(``inliers0``). Resumable and crash-safe like extraction (:class:`~selfdesc.pipeline.h5io.PartedWriter`):
pairs already in the output (in either order) are skipped.
"""
from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm import tqdm

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.matching import match_mnn_batched
from selfdesc.matching.learned import LearnedMatcher, load_matcher
from selfdesc.pipeline.h5io import MATCHES_CONVENTIONS, MATCHES_FORMAT, FeatureFile, PartedWriter, names_to_pair
from selfdesc.pipeline.pairs import Pair, unique_pairs
from selfdesc.pipeline.verify import verify_matches

VERIFY_MODES = ("none", "homography", "fundamental", "essential")


@dataclass
class MatchConfig:
    """Options of :func:`match_pairs`.

    ``matcher``: a trained matcher (shipped name or file) instead of mutual nearest neighbours.
    ``batch_size``: pairs per matching call (padded; useful on CUDA). ``verify``: RANSAC model
    (``essential`` needs ``intrinsics``); ``verify_threshold`` in pixels. ``cache_size``:
    images whose features are kept in memory (pairs lists revisit images).
    """

    ratio: float | None = None
    min_similarity: float | None = None
    matcher: str | None = None
    verify: str = "none"
    verify_threshold: float = 2.0
    verify_backend: str = "opencv"
    batch_size: int = 1
    checkpoint_every: int = 500
    cache_size: int = 512
    progress: bool = True


@dataclass
class MatchSummary:
    """Pairs in the list (unique), already matched before, matched now; mean matches / inliers per new pair."""

    num_pairs: int
    num_skipped: int
    num_matched: int
    mean_matches: float
    mean_inliers: float | None
    seconds: float
    written: bool

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def check_pairs(pairs: Sequence[Pair], available: set[str], features: Path, source: str) -> None:
    """Raise a one-line DatasetError for the first pair naming an image absent from ``features``,
    or for two pairs whose hloc group names collide."""
    keys: dict[str, Pair] = {}
    for a, b in pairs:
        for name in (a, b):
            if name not in available:
                raise DatasetError(f"{source}: pair '{a} {b}': image '{name}' is not in {features}")
        for key in (names_to_pair(a, b), names_to_pair(b, a)):
            other = keys.get(key)
            if other is not None and set(other) != {a, b}:
                raise DatasetError(f"{source}: pairs '{other[0]} {other[1]}' and '{a} {b}' have the same hloc name '{key}'")
        keys[names_to_pair(a, b)] = (a, b)


class _FeatureCache:
    """LRU cache of ``name -> (keypoints (N, 2) numpy, descriptors (N, D) float32 tensor, image_size (2,) numpy)``."""

    def __init__(self, features: FeatureFile, size: int) -> None:
        self.features, self.size = features, max(2, size)
        self.items: OrderedDict[str, tuple[np.ndarray, torch.Tensor, np.ndarray]] = OrderedDict()

    def __getitem__(self, name: str) -> tuple[np.ndarray, torch.Tensor, np.ndarray]:
        if name in self.items:
            self.items.move_to_end(name)
            return self.items[name]
        f = self.features.read(name)
        item = (f["keypoints"], torch.from_numpy(f["descriptors"]), f["image_size"])
        self.items[name] = item
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return item


def _match_batch(descs: list[tuple[torch.Tensor, torch.Tensor]], config: MatchConfig, device: torch.device) -> list[tuple[np.ndarray, np.ndarray]]:
    """MNN of several pairs in one padded call: per pair ``matches0 (N0,)`` int32, ``scores0 (N0,)`` float32."""
    B = len(descs)
    dims = {d.shape[1] for pair in descs for d in pair if d.numel()}
    if len(dims) > 1:
        raise DatasetError(f"descriptors of different dimensions in one features file: {sorted(dims)}")
    D = dims.pop() if dims else 1
    n0 = [p[0].shape[0] for p in descs]
    n1 = [p[1].shape[0] for p in descs]
    N, M = max(n0), max(n1)
    d0, d1 = torch.zeros(B, N, D), torch.zeros(B, M, D)
    mask0, mask1 = torch.zeros(B, N, dtype=torch.bool), torch.zeros(B, M, dtype=torch.bool)
    for b, (a, c) in enumerate(descs):
        if a.numel():
            d0[b, : len(a)] = a
        if c.numel():
            d1[b, : len(c)] = c
        mask0[b, : len(a)] = True
        mask1[b, : len(c)] = True
    with torch.no_grad():
        m0, s0 = match_mnn_batched(
            d0.to(device), d1.to(device), mask0.to(device), mask1.to(device), ratio=config.ratio, min_similarity=config.min_similarity
        )
    m0, s0 = m0.cpu().numpy(), s0.float().cpu().numpy()
    return [(m0[b, : n0[b]].astype(np.int32), s0[b, : n0[b]].astype(np.float32)) for b in range(B)]


def _learned_matcher(config: MatchConfig, device: str) -> LearnedMatcher | None:
    """The trained matcher of ``config.matcher`` on ``device`` (None: mutual nearest neighbours)."""
    if config.matcher is None:
        return None
    if config.ratio is not None or config.min_similarity is not None:
        raise ConfigError("--ratio / min_similarity apply to mutual nearest neighbours, not to --matcher")
    return load_matcher(config.matcher, device=device)


def match_pairs(
    features: str | Path,
    pairs: Sequence[Pair],
    out: str | Path,
    config: MatchConfig | None = None,
    device: str = "cpu",
    intrinsics: Mapping[str, np.ndarray] | None = None,
    source: str = "pairs",
) -> MatchSummary:
    """Match ``pairs`` of images of ``features`` (features.h5) into ``out`` (matches.h5).

    Args:
        features: a features.h5 written by :func:`~selfdesc.pipeline.extract.extract_features`
            (or hloc).
        pairs: ``(name0, name1)`` pairs; repeats and reversed repeats are matched once.
        out: the matches.h5 to create or complete.
        config: see :class:`MatchConfig`.
        device: where descriptors are matched.
        intrinsics: ``{name: K (3, 3)}`` (pixel-centre convention), for ``verify="essential"``.
        source: the pair list's name, for error messages.

    Raises:
        DatasetError: a pair names an image absent from ``features`` (nothing is written).
        ConfigError: ``out`` holds matches of other settings, or an unknown ``verify``.
    """
    config = config or MatchConfig()
    if config.verify not in VERIFY_MODES:
        raise ConfigError(f"unknown --verify '{config.verify}' (known: {', '.join(VERIFY_MODES)})")
    learned = _learned_matcher(config, device)
    t0 = time.time()
    features, out = Path(features), Path(out)
    pairs = unique_pairs(pairs)
    with FeatureFile(features) as ff:
        check_pairs(pairs, set(ff.names), features, source)
        if learned is not None:
            learned.check_features(str(ff.attrs.get("features", "")))
        if config.verify == "essential":
            lacking = sorted({n for p in pairs for n in p} - set(intrinsics or {}))
            if lacking:
                raise DatasetError(f"essential-matrix verification needs intrinsics of every image; none for '{lacking[0]}'")
        sig = {
            "features": str(ff.attrs.get("signature", "")),
            **{k: getattr(config, k) for k in ("ratio", "min_similarity", "verify")},
            **({"matcher": learned.source} if learned is not None else {}),
            **({"verify_threshold": config.verify_threshold, "verify_backend": config.verify_backend} if config.verify != "none" else {}),
        }
        attrs = {**MATCHES_CONVENTIONS, "features_file": str(features.resolve()), "conf": json.dumps(sig)}
        writer = PartedWriter(out, MATCHES_FORMAT, "matches0", sig, attrs, config.checkpoint_every)
        todo = [(a, b) for a, b in pairs if names_to_pair(a, b) not in writer.done and names_to_pair(b, a) not in writer.done]
        cache = _FeatureCache(ff, config.cache_size)
        dev = torch.device(device)
        step = max(1, config.batch_size)
        counts, inlier_counts = [], []
        bar = tqdm(total=len(todo), desc="match", unit="pair", disable=not config.progress)
        try:
            for start in range(0, len(todo), step):
                chunk = todo[start : start + step]
                feats = [(cache[a], cache[b]) for a, b in chunk]
                if learned is not None:
                    dicts = [tuple({"keypoints": f[0], "descriptors": f[1], "image_size": f[2]} for f in pair) for pair in feats]
                    results = [(m0.astype(np.int32), s0) for m0, s0 in learned.match_batch(dicts)]
                else:
                    results = _match_batch([(f0[1], f1[1]) for f0, f1 in feats], config, dev)
                for (a, b), (f0, f1), (m0, s0) in zip(chunk, feats, results):
                    datasets: dict[str, np.ndarray] = {"matches0": m0, "matching_scores0": s0}
                    pair_attrs: dict[str, Any] = {}
                    counts.append(int((m0 >= 0).sum()))
                    if config.verify != "none":
                        i0 = np.nonzero(m0 >= 0)[0]
                        matches = np.stack([i0, m0[i0]], axis=1)
                        K0, K1 = (intrinsics[a], intrinsics[b]) if config.verify == "essential" and intrinsics else (None, None)
                        v = verify_matches(f0[0], f1[0], matches, config.verify, config.verify_threshold, backend=config.verify_backend, K0=K0, K1=K1)
                        inliers0 = np.zeros(len(m0), bool)
                        inliers0[i0[v.inliers]] = True
                        datasets["inliers0"] = inliers0
                        if v.matrix is not None:
                            datasets["model_matrix"] = v.matrix
                        pair_attrs["model"] = config.verify
                        inlier_counts.append(int(inliers0.sum()))
                    writer.add(names_to_pair(a, b), datasets, pair_attrs)
                bar.update(len(chunk))
        finally:
            bar.close()
            writer.close()
    written = writer.finalize()
    return MatchSummary(
        num_pairs=len(pairs),
        num_skipped=len(pairs) - len(todo),
        num_matched=len(todo),
        mean_matches=float(np.mean(counts)) if counts else 0.0,
        mean_inliers=(float(np.mean(inlier_counts)) if inlier_counts else 0.0) if config.verify != "none" else None,
        seconds=time.time() - t0,
        written=written,
    )


__all__ = ["MatchConfig", "MatchSummary", "VERIFY_MODES", "check_pairs", "match_pairs"]
