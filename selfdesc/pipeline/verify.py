"""Geometric verification of putative matches: RANSAC for a homography, fundamental or essential matrix.

Backends: OpenCV (``cv2.USAC_MAGSAC``) or PoseLib (LO-RANSAC with non-linear refinement).
Keypoints are ``(x, y)`` pixel-centre coordinates; the estimated matrices map those
coordinates (``x1 ~ H x0``, ``x1^T F x0 = 0``). For ``essential``, intrinsics ``K0`` / ``K1``
(3x3) must use the same pixel-centre convention (a COLMAP principal point minus 0.5); the
threshold stays in pixels (divided by the mean focal length internally).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfdesc.errors import ConfigError

MODELS = ("homography", "fundamental", "essential")
BACKENDS = ("opencv", "poselib")
#: fewest matches each model is estimated from (below that, nothing is an inlier)
MIN_MATCHES = {"homography": 4, "fundamental": 8, "essential": 5}


@dataclass
class Verification:
    """``inliers`` ``(K,)`` bool over the input matches; ``matrix`` 3x3 (``None`` when estimation failed)."""

    inliers: np.ndarray
    matrix: np.ndarray | None


def _fail(k: int) -> Verification:
    return Verification(np.zeros(k, bool), None)


def _opencv(p0: np.ndarray, p1: np.ndarray, model: str, threshold: float, confidence: float, max_iters: int, K0: np.ndarray | None, K1: np.ndarray | None) -> Verification:
    import cv2

    if model == "homography":
        M, mask = cv2.findHomography(p0, p1, cv2.USAC_MAGSAC, threshold, maxIters=max_iters, confidence=confidence)
    elif model == "fundamental":
        M, mask = cv2.findFundamentalMat(p0, p1, cv2.USAC_MAGSAC, threshold, confidence, max_iters)
    else:
        assert K0 is not None and K1 is not None
        n0, n1 = _normalise(p0, K0), _normalise(p1, K1)
        focal = float(np.mean([K0[0, 0], K0[1, 1], K1[0, 0], K1[1, 1]]))
        M, mask = cv2.findEssentialMat(n0, n1, np.eye(3), cv2.USAC_MAGSAC, confidence, threshold / focal, maxIters=max_iters)
    if M is None or mask is None or M.shape[0] < 3:
        return _fail(len(p0))
    return Verification(mask.reshape(-1).astype(bool), M[:3].astype(np.float64))


def _poselib(p0: np.ndarray, p1: np.ndarray, model: str, threshold: float, confidence: float, max_iters: int, K0: np.ndarray | None, K1: np.ndarray | None) -> Verification:
    import poselib

    ransac = {"max_reproj_error": threshold, "success_prob": confidence, "max_iterations": max_iters}
    if model == "homography":
        M, info = poselib.estimate_homography(p0, p1, ransac, {})
    elif model == "fundamental":
        M, info = poselib.estimate_fundamental(p0, p1, ransac, {})
    else:
        assert K0 is not None and K1 is not None
        ransac["max_epipolar_error"] = threshold
        pose, info = poselib.estimate_relative_pose(p0, p1, _camera(K0), _camera(K1), ransac, {})
        t = pose.t
        tx = np.array([[0, -t[2], t[1]], [t[2], 0, -t[0]], [-t[1], t[0], 0]])
        M = tx @ pose.R
    inliers = np.asarray(info.get("inliers", []), bool)
    if inliers.shape != (len(p0),):
        return _fail(len(p0))
    return Verification(inliers, np.asarray(M, np.float64))


def _normalise(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    h = np.concatenate([points, np.ones((len(points), 1))], axis=1) @ np.linalg.inv(K).T
    return h[:, :2] / h[:, 2:]


def _camera(K: np.ndarray) -> dict:
    # PoseLib's PINHOLE camera; width / height are not used by the estimator
    return {"model": "PINHOLE", "width": 0, "height": 0, "params": [K[0, 0], K[1, 1], K[0, 2], K[1, 2]]}


def verify_matches(
    keypoints0: np.ndarray,
    keypoints1: np.ndarray,
    matches: np.ndarray,
    model: str = "fundamental",
    threshold: float = 2.0,
    confidence: float = 0.9999,
    max_iters: int = 10000,
    backend: str = "opencv",
    K0: np.ndarray | None = None,
    K1: np.ndarray | None = None,
) -> Verification:
    """RANSAC inliers of ``matches``.

    Args:
        keypoints0, keypoints1: ``(N, 2)`` / ``(M, 2)`` pixel-centre ``(x, y)``.
        matches: ``(K, 2)`` index pairs.
        model: ``"homography"``, ``"fundamental"`` or ``"essential"`` (needs ``K0``, ``K1``).
        threshold: inlier threshold in pixels (reprojection error for H, epipolar distance
            for F / E).
        confidence, max_iters: RANSAC stopping criteria.
        backend: ``"opencv"`` or ``"poselib"``.

    Returns:
        :class:`Verification`; all-``False`` inliers when there are fewer than
        :data:`MIN_MATCHES` matches or estimation fails.
    """
    if model not in MODELS:
        raise ConfigError(f"unknown verification model '{model}' (known: {', '.join(MODELS)})")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown verification backend '{backend}' (known: {', '.join(BACKENDS)})")
    if model == "essential" and (K0 is None or K1 is None):
        raise ConfigError("essential-matrix verification needs the intrinsics K0 and K1")
    matches = np.asarray(matches, np.int64).reshape(-1, 2)
    if len(matches) < MIN_MATCHES[model]:
        return _fail(len(matches))
    p0 = np.ascontiguousarray(np.asarray(keypoints0, np.float64)[matches[:, 0]])
    p1 = np.ascontiguousarray(np.asarray(keypoints1, np.float64)[matches[:, 1]])
    K0 = None if K0 is None else np.asarray(K0, np.float64)
    K1 = None if K1 is None else np.asarray(K1, np.float64)
    run = _opencv if backend == "opencv" else _poselib
    return run(p0, p1, model, float(threshold), float(confidence), int(max_iters), K0, K1)


__all__ = ["BACKENDS", "MIN_MATCHES", "MODELS", "Verification", "verify_matches"]
