"""Similarity alignment of reconstructed camera centres to ground truth, and centre errors.

The alignment is Umeyama's closed-form least-squares similarity (scale, rotation,
translation) over the images registered in the reconstruction; errors are Euclidean distances
between aligned and GT centres in GT units (metres for Strecha). Unregistered images count in
``fraction_registered`` only. With fewer than 3 registered images no similarity is defined and
the errors are ``None``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np


@dataclass(frozen=True)
class Similarity:
    """``x -> scale * R @ x + t``."""

    scale: float
    R: np.ndarray
    t: np.ndarray

    def apply(self, X: np.ndarray) -> np.ndarray:
        """``(N, 3)`` -> ``(N, 3)``."""
        return self.scale * np.asarray(X, np.float64) @ self.R.T + self.t


def umeyama(src: np.ndarray, dst: np.ndarray, with_scale: bool = True) -> Similarity:
    """Least-squares similarity mapping ``src`` onto ``dst`` (Umeyama, PAMI 1991).

    Args:
        src, dst: ``(N, 3)`` corresponding points, ``N >= 3`` not collinear.
        with_scale: estimate the scale (else 1).
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise ValueError(f"umeyama needs two (N, 3) arrays with N >= 3, got {src.shape} and {dst.shape}")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / len(src)
    U, D, Vt = np.linalg.svd(cov)
    S = np.eye(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        S[2, 2] = -1
    R = U @ S @ Vt
    var_s = (xs**2).sum() / len(src)
    scale = float(np.trace(np.diag(D) @ S) / var_s) if with_scale and var_s > 0 else 1.0
    return Similarity(scale, R, mu_d - scale * R @ mu_s)


def centre_accuracy(reconstructed: Mapping[str, np.ndarray], ground_truth: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Align reconstructed centres to GT and measure the residual distances.

    Args:
        reconstructed: image name -> ``(3,)`` centre of each registered image.
        ground_truth: image name -> ``(3,)`` GT centre of every image of the scene.

    Returns:
        ``{"num_images", "num_registered", "fraction_registered", "median_error",
        "max_error", "errors": {name: e}, "similarity": Similarity | None}``.
    """
    names = [n for n in ground_truth if n in reconstructed]
    out: dict[str, Any] = {
        "num_images": len(ground_truth),
        "num_registered": len(names),
        "fraction_registered": len(names) / len(ground_truth) if ground_truth else 0.0,
        "median_error": None,
        "max_error": None,
        "errors": {},
        "similarity": None,
    }
    if len(names) < 3:
        return out
    src = np.stack([reconstructed[n] for n in names])
    dst = np.stack([ground_truth[n] for n in names])
    sim = umeyama(src, dst)
    err = np.linalg.norm(sim.apply(src) - dst, axis=1)
    out.update(median_error=float(np.median(err)), max_error=float(err.max()), errors=dict(zip(names, err.tolist())), similarity=sim)
    return out
