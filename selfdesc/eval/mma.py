"""Mean matching accuracy (MMA), D2-Net HPatches protocol (anchors §A1, spec §8 E1).

Per match: one-directional reprojection error ``||pi(H x0) - x1||`` (no symmetric term, no
visibility check). Per pair: ``MMA(t)`` = fraction of matches with ``error <= t`` (inclusive); a
pair without matches scores 0 and still counts. Per split: pair-weighted mean
(``overall = sum over all pairs / #pairs``, not ``(MMA_i + MMA_v) / 2``).

:class:`EvalAccumulator` collects the per-pair results of a run (MMA inputs and, optionally,
the homography corner error of :mod:`selfdesc.eval.homography`) and writes the summary.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from selfdesc.eval.aggregate import (
    PairRecord,
    by_threshold,
    group_by_split,
    mean_features_per_image,
    mean_matches_per_pair,
    pair_weighted_mean,
)
from selfdesc.eval.homography import HOMOGRAPHY_THRESHOLDS, homography_correct
from selfdesc.geometry.homography import warp_points

#: Thresholds (px) of the MMA curve as plotted/reported (D2-Net computes 1..15, plots 1..10).
MMA_THRESHOLDS = tuple(range(1, 11))


def match_errors(kp0: np.ndarray, kp1: np.ndarray, matches: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Reprojection error of each match under the ground-truth homography.

    Args:
        kp0: ``N x 2`` keypoints ``(x, y)`` of image 0; kp1: ``M x 2`` of image 1 (pixel centres).
        matches: ``K x 2`` index pairs ``(i0, i1)``.
        H: ``3 x 3`` homography mapping image-0 pixels to image-1 pixels.

    Returns:
        ``(K,)`` float64 errors in image-1 pixels (``inf`` for points sent to infinity).
    """
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    if len(matches) == 0:
        return np.zeros((0,), np.float64)
    projected = warp_points(H, np.asarray(kp0, np.float64)[matches[:, 0]])
    return np.linalg.norm(projected - np.asarray(kp1, np.float64)[matches[:, 1]], axis=1)


def pair_mma(errors: np.ndarray, thresholds: Iterable[float] = MMA_THRESHOLDS) -> np.ndarray:
    """``(T,)`` fraction of ``errors`` with ``error <= t`` per threshold; all zeros when empty."""
    t = np.asarray(list(thresholds), np.float64)
    errors = np.asarray(errors, np.float64).reshape(-1)
    if len(errors) == 0:
        return np.zeros(len(t))
    return (errors[:, None] <= t[None, :]).mean(axis=0)


class EvalAccumulator:
    """Collects one :class:`~selfdesc.eval.aggregate.PairRecord` per evaluated pair.

    Example::

        acc = EvalAccumulator()
        acc.add_pair("v", match_errors(kp0, kp1, m, H), (len(kp0), len(kp1)),
                     homography_error=homography_error(H_est, H, size0, size1))
        acc.summary()  # {"overall": {...}, "v": {...}}
    """

    def __init__(self) -> None:
        self.records: list[PairRecord] = []

    def __len__(self) -> int:
        return len(self.records)

    def add_pair(
        self,
        split: str,
        errors: np.ndarray,
        num_features: tuple[int, int],
        homography_error: float | None = None,
        image_ids: tuple[str, str] | None = None,
    ) -> None:
        """Record one pair.

        Args:
            split: ``"i"``, ``"v"`` or another label (then counted in ``overall`` only).
            errors: ``(K,)`` reprojection errors of its matches (:func:`match_errors`);
                ``K`` is the pair's number of matches.
            num_features: ``(n0, n1)`` keypoints in image 0 and image 1.
            homography_error: corner error (``inf`` on failure) or ``None`` if not evaluated.
            image_ids: ids of the two images, so shared images count once in #features.
        """
        n0, n1 = num_features
        self.records.append(
            PairRecord(
                split=str(split),
                errors=np.asarray(errors, np.float64).reshape(-1),
                num_features=(int(n0), int(n1)),
                homography_error=None if homography_error is None else float(homography_error),
                image_ids=None if image_ids is None else (str(image_ids[0]), str(image_ids[1])),
            )
        )

    def summary(
        self,
        thresholds: Iterable[float] = MMA_THRESHOLDS,
        homography_thresholds: Iterable[float] = HOMOGRAPHY_THRESHOLDS,
    ) -> dict[str, dict[str, Any]]:
        """Pair-weighted results per split.

        Returns:
            ``{split: {"mma": {"1": x, ...}, "homography_accuracy": {"1": x, "3": x, ...},
            "num_features": mean per image, "num_matches": mean per pair, "num_pairs": n}}``
            for ``overall`` and the present ``i``/``v`` splits. ``homography_accuracy`` is
            left out when no pair carries a homography error.

        Raises:
            ValueError: no pairs, or only some pairs carry a homography error.
        """
        if not self.records:
            raise ValueError("no pairs were evaluated")
        thresholds, homography_thresholds = list(thresholds), list(homography_thresholds)
        with_h = [r.homography_error is not None for r in self.records]
        if any(with_h) and not all(with_h):
            raise ValueError("homography error given for some pairs only")

        def mma(r: PairRecord) -> np.ndarray:
            return pair_mma(r.errors, thresholds)

        def correct(r: PairRecord) -> np.ndarray:
            return homography_correct(r.homography_error, homography_thresholds)

        out: dict[str, dict[str, Any]] = {}
        for split, recs in group_by_split(self.records).items():
            entry: dict[str, Any] = {"mma": by_threshold(thresholds, pair_weighted_mean(recs, mma, len(thresholds)))}
            if all(with_h):
                acc = pair_weighted_mean(recs, correct, len(homography_thresholds))
                entry["homography_accuracy"] = by_threshold(homography_thresholds, acc)
            entry["num_features"] = mean_features_per_image(recs)
            entry["num_matches"] = mean_matches_per_pair(recs)
            entry["num_pairs"] = len(recs)
            out[split] = entry
        return out
