"""Per-pair records and the split-wise, pair-weighted aggregation shared by every HPatches-style metric.

A benchmark run produces one :class:`PairRecord` per image pair. Every summary number is a
mean over the pairs of a split (**pair-weighted**: ``overall`` is the mean over *all* pairs,
not the mean of the ``i`` and ``v`` means — D2-Net protocol, anchors §A1).

Splits: pairs labelled ``"i"`` (illumination) or ``"v"`` (viewpoint) also get their own
split; any other label (e.g. ``"overall"`` for plain pair lists) only counts in ``overall``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

#: Splits that get their own summary entry besides ``overall``, in report order.
NAMED_SPLITS = ("i", "v")


def threshold_key(t: float) -> str:
    """Result key of a threshold: ``3 -> "3"``, ``2.5 -> "2.5"``."""
    return f"{float(t):g}"


@dataclass(frozen=True)
class PairRecord:
    """What one evaluated image pair contributes to the summaries.

    Attributes:
        split: ``"i"``, ``"v"`` or any other label (counted in ``overall`` only).
        errors: ``(K,)`` float64 reprojection errors (px) of the pair's ``K`` matches.
        num_features: ``(n0, n1)`` keypoints detected in image 0 and image 1.
        homography_error: mean corner error (px) of the estimated homography, ``inf`` when
            estimation failed, ``None`` when homography estimation was not evaluated.
        image_ids: optional ``(id0, id1)``; an image shared by several pairs (the HPatches
            reference image) then counts once in the mean #features per image. ``None``:
            both images are specific to this pair.
    """

    split: str
    errors: np.ndarray
    num_features: tuple[int, int]
    homography_error: float | None = None
    image_ids: tuple[str, str] | None = None

    @property
    def num_matches(self) -> int:
        return int(len(self.errors))


def group_by_split(records: Sequence[PairRecord]) -> dict[str, list[PairRecord]]:
    """``{"overall": all records, "i": ..., "v": ...}``; ``i``/``v`` only when present."""
    groups = {"overall": list(records)}
    for split in NAMED_SPLITS:
        members = [r for r in records if r.split == split]
        if members:
            groups[split] = members
    return groups


def pair_sum(records: Sequence[PairRecord], per_pair: Callable[[PairRecord], np.ndarray], size: int) -> np.ndarray:
    """Sum of ``per_pair(record)`` over ``records`` (the D2-Net cache stores these sums).

    Args:
        records: pairs (may be empty).
        per_pair: maps a record to a ``(size,)`` array (e.g. its MMA at ``size`` thresholds).
        size: length of the per-pair arrays (the result when ``records`` is empty is zeros).

    Returns:
        ``(size,)`` float64.
    """
    total = np.zeros(size, np.float64)
    for rec in records:
        total += np.asarray(per_pair(rec), np.float64)
    return total


def pair_weighted_mean(records: Sequence[PairRecord], per_pair: Callable[[PairRecord], np.ndarray], size: int) -> np.ndarray:
    """:func:`pair_sum` divided by the number of pairs; ``records`` must not be empty."""
    if not records:
        raise ValueError("cannot average over an empty list of pairs")
    return pair_sum(records, per_pair, size) / len(records)


def by_threshold(thresholds: Iterable[float], values: np.ndarray) -> dict[str, float]:
    """``{"1": v1, "3": v3, ...}`` from thresholds and the matching ``(T,)`` values."""
    return {threshold_key(t): float(v) for t, v in zip(thresholds, values)}


def mean_features_per_image(records: Sequence[PairRecord]) -> float:
    """Mean #keypoints over the distinct images of ``records`` (shared images count once).

    Raises:
        ValueError: the same image id is given two different keypoint counts.
    """
    counts: dict[object, int] = {}
    for idx, rec in enumerate(records):
        ids = rec.image_ids if rec.image_ids is not None else ((idx, 0), (idx, 1))
        for image_id, n in zip(ids, rec.num_features):
            if counts.setdefault(image_id, int(n)) != int(n):
                raise ValueError(f"image {image_id!r} recorded with {counts[image_id]} and {n} keypoints")
    return float(np.mean(list(counts.values())))


def mean_matches_per_pair(records: Sequence[PairRecord]) -> float:
    """Mean number of matches per pair (pairs without a match count as 0)."""
    return float(np.mean([r.num_matches for r in records]))
