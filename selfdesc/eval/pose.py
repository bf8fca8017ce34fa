"""Relative-pose benchmark (SuperGlue protocol): extract -> MNN match (or a trained matcher) -> essential matrix -> AUC.

Per pair, the essential matrix is estimated from the matches with the **ground-truth**
intrinsics (``cv2.findEssentialMat`` on normalised coordinates, RANSAC, threshold
``ransac_threshold`` px divided by the mean focal length, confidence 0.99999) and decomposed with
``cv2.recoverPose`` (every E candidate tried, the one with most inliers kept). The pose error is
``max(rotation error, translation-direction error)`` in degrees, the translation angle taken
modulo the sign of ``t`` (``min(a, 180 - a)``); a failed estimate has error ``inf``. The summary is
the AUC of the recall-vs-error curve up to 5/10/20° (trapezoid integral divided by the threshold,
with ``(0, 0)`` prepended: SuperGlue's ``pose_auc``).

Keypoints are in original-image pixels, pixel-centre convention, like the GT ``K``.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from tqdm import tqdm

from selfdesc.datasets.scannet_pairs import PosePair
from selfdesc.eval.aggregate import threshold_key
from selfdesc.eval.extraction import ImageFeatures, MatchedBenchmarkSettings, Timing, evaluate_features, match_features
from selfdesc.matching.learned import LearnedMatcher

AUC_THRESHOLDS = (5.0, 10.0, 20.0)


@dataclass
class PoseBenchmarkConfig(MatchedBenchmarkSettings):
    """Settings of a relative-pose run (defaults: SuperGlue's OpenCV estimator at 1 px): the
    extractor and matcher settings plus RANSAC's."""

    ransac_threshold: float = 1.0
    ransac_confidence: float = 0.99999

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["estimator"] = "OpenCV findEssentialMat (RANSAC, GT K) + recoverPose"
        return d


def estimate_relative_pose(
    kpts0: np.ndarray,
    kpts1: np.ndarray,
    K0: np.ndarray,
    K1: np.ndarray,
    threshold: float = 1.0,
    confidence: float = 0.99999,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Relative pose from matched keypoints and known intrinsics.

    Args:
        kpts0, kpts1: ``(K, 2)`` matched pixels of image 0 / 1.
        K0, K1: ``3 x 3`` intrinsics.
        threshold: RANSAC threshold in pixels.

    Returns:
        ``(R, t, inliers)``: ``3 x 3`` rotation and unit ``(3,)`` translation mapping camera 0 to
        camera 1 (``X1 = R X0 + t``, scale unknown), ``(K,)`` bool inlier mask; ``None`` with
        fewer than 5 matches, when no essential matrix is found, or when OpenCV's five-point
        solver rejects a degenerate match set (e.g. repeated points).
    """
    if len(kpts0) < 5:
        return None
    f_mean = np.mean([K0[0, 0], K0[1, 1], K1[0, 0], K1[1, 1]])
    p0 = (np.asarray(kpts0, np.float64) - K0[[0, 1], [2, 2]]) / K0[[0, 1], [0, 1]]
    p1 = (np.asarray(kpts1, np.float64) - K1[[0, 1], [2, 2]]) / K1[[0, 1], [0, 1]]
    try:
        E, mask = cv2.findEssentialMat(p0, p1, np.eye(3), threshold=threshold / f_mean, prob=confidence, method=cv2.RANSAC)
    except cv2.error:  # solvePoly asserts on degenerate minimal samples
        return None
    if E is None or mask is None:
        return None
    best = None
    for E_k in np.split(E, len(E) // 3):
        n, R, t, inl = cv2.recoverPose(E_k, p0, p1, np.eye(3), mask=mask.copy())
        if best is None or n > best[0]:
            best = (n, R, t[:, 0], inl.ravel() > 0)
    assert best is not None
    return best[1], best[2] / max(np.linalg.norm(best[2]), 1e-12), best[3]


def rotation_error(R_est: np.ndarray, R_gt: np.ndarray) -> float:
    """Angle in degrees of ``R_est^T R_gt``."""
    cos = (np.trace(R_est.T @ R_gt) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def translation_error(t_est: np.ndarray, t_gt: np.ndarray) -> float:
    """Angle in degrees between two translation directions, ignoring sign (``min(a, 180 - a)``)."""
    n = np.linalg.norm(t_est) * np.linalg.norm(t_gt)
    if n < 1e-12:
        return 0.0 if np.linalg.norm(t_gt) < 1e-12 else 90.0
    a = float(np.degrees(np.arccos(np.clip(np.dot(t_est, t_gt) / n, -1.0, 1.0))))
    return min(a, 180.0 - a)


def pose_error(R_est: np.ndarray, t_est: np.ndarray, T_0to1: np.ndarray) -> float:
    """``max(rotation error, translation-direction error)`` in degrees against a GT ``4 x 4``."""
    return max(rotation_error(R_est, T_0to1[:3, :3]), translation_error(t_est, T_0to1[:3, 3]))


def pose_auc(errors: Sequence[float], thresholds: Sequence[float] = AUC_THRESHOLDS) -> dict[str, float]:
    """Area under the recall-vs-error curve up to each threshold, divided by it (SuperGlue).

    Args:
        errors: one pose error (degrees) per pair; ``inf`` for failures.

    Returns:
        ``{"5": auc, "10": auc, "20": auc}`` in ``[0, 1]``.
    """
    e = np.sort(np.asarray(errors, np.float64))
    if e.size == 0:
        raise ValueError("pose_auc needs at least one error")
    recall = np.arange(1, e.size + 1) / e.size
    e = np.concatenate([[0.0], e])
    recall = np.concatenate([[0.0], recall])
    out = {}
    for t in thresholds:
        last = int(np.searchsorted(e, t))
        r = np.concatenate([recall[:last], [recall[last - 1]]])
        x = np.concatenate([e[:last], [t]])
        out[threshold_key(t)] = float(np.trapezoid(r, x) / t)
    return out


def evaluate_pose_pair(
    f0: ImageFeatures, f1: ImageFeatures, pair: PosePair, config: PoseBenchmarkConfig, matcher: LearnedMatcher | None = None
) -> dict[str, Any]:
    """Match two images' features (MNN, or ``matcher``), estimate their pose and compare with the GT.

    Returns:
        ``{"name", "scene", "num_matches", "num_inliers", "error_R", "error_t", "error"}`` (errors
        in degrees, ``inf`` on failure).
    """
    matches = match_features(f0, f1, config.device, matcher)
    k0, k1 = f0.keypoints[matches[:, 0]], f1.keypoints[matches[:, 1]]
    est = estimate_relative_pose(k0, k1, pair.K0, pair.K1, config.ransac_threshold, config.ransac_confidence)
    record: dict[str, Any] = {"name": pair.name, "scene": pair.scene, "num_matches": int(len(matches))}
    if est is None:
        return {**record, "num_inliers": 0, "error_R": float("inf"), "error_t": float("inf"), "error": float("inf")}
    R, t, inliers = est
    err_R, err_t = rotation_error(R, pair.T_0to1[:3, :3]), translation_error(t, pair.T_0to1[:3, 3])
    return {**record, "num_inliers": int(inliers.sum()), "error_R": err_R, "error_t": err_t, "error": max(err_R, err_t)}


def summarize_pose(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scene and ``overall``: ``{"auc": {...}, "num_pairs": n, "mean_matches", "mean_inliers"}``.

    With a single unnamed scene only ``overall`` is returned.
    """
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        if r["scene"]:
            groups[r["scene"]].append(r)
    groups = dict(sorted(groups.items()))
    groups["overall"] = list(records)
    return {
        name: {
            "auc": pose_auc([r["error"] for r in recs]),
            "num_pairs": len(recs),
            "mean_matches": float(np.mean([r["num_matches"] for r in recs])),
            "mean_inliers": float(np.mean([r["num_inliers"] for r in recs])),
        }
        for name, recs in groups.items()
    }


def run_pose_benchmark(
    features: Sequence[str], pairs: Sequence[PosePair], config: PoseBenchmarkConfig, progress: bool = True
) -> tuple[dict[str, dict[str, Any]], dict[str, Timing], dict[str, list[dict[str, Any]]]]:
    """Evaluate each feature on every pair.

    Returns:
        ``results`` (``{feature: {scene | "overall": {"auc", "num_pairs", ...}}}``), extraction
        timing per feature, and per-pair records per feature (errors ``inf`` on failure).
    """
    images = [p for pair in pairs for p in (pair.image0, pair.image1)]

    def evaluate(label: str, feats: dict[Path, ImageFeatures], matcher: LearnedMatcher | None) -> list[dict[str, Any]]:
        return [
            evaluate_pose_pair(feats[pair.image0], feats[pair.image1], pair, config, matcher)
            for pair in tqdm(pairs, desc=f"pose {label}", disable=not progress, leave=False, unit="pair")
        ]

    per_pair, timings = evaluate_features(features, images, config, evaluate, progress)
    return {label: summarize_pose(records) for label, records in per_pair.items()}, timings, per_pair
