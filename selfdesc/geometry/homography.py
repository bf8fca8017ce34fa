"""Homography utilities.

All points are ``(x, y)`` pixel-centre coordinates (see :mod:`selfdesc.io.image`).
A homography ``H`` maps homogeneous points of image 0 to image 1: ``x1 ~ H @ [x0, 1]``.
"""
from __future__ import annotations

import numpy as np
import torch


def warp_points(H: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to ``N x 2`` points; returns ``N x 2`` (float64).

    Points mapped to the plane at infinity come back as ``inf``.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    hom = np.concatenate([pts, np.ones((len(pts), 1))], axis=1) @ np.asarray(H, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        out = hom[:, :2] / hom[:, 2:3]
    out[~np.isfinite(out)] = np.inf
    return out


def warp_points_torch(H: torch.Tensor, points: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Batched homography: ``H`` ``(B, 3, 3)`` or ``(3, 3)``, ``points`` ``(B, N, 2)`` or ``(N, 2)``."""
    hom = torch.cat([points, torch.ones_like(points[..., :1])], dim=-1)
    out = hom @ H.transpose(-1, -2)
    z = out[..., 2:3]
    z = torch.where(z.abs() < eps, torch.full_like(z, eps), z)
    return out[..., :2] / z


def scale_homography(H: np.ndarray, scale0: tuple[float, float], scale1: tuple[float, float]) -> np.ndarray:
    """Re-express ``H`` (original pixels) between resized images.

    ``scale_i = (W_orig_i / W_new_i, H_orig_i / H_new_i)``. With the pixel-centre convention
    a resized point ``p`` is ``(p + 0.5) * s - 0.5`` in original pixels, so
    ``H' = T1^-1 @ H @ T0`` with ``T_i = [[sx, 0, sx/2 - 1/2], [0, sy, sy/2 - 1/2], [0, 0, 1]]``.
    """

    def to_original(s: tuple[float, float]) -> np.ndarray:
        sx, sy = s
        return np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]], dtype=np.float64)

    return np.linalg.inv(to_original(scale1)) @ np.asarray(H, np.float64) @ to_original(scale0)


def image_corners(width: int, height: int) -> np.ndarray:
    """The 4 pixel-centre corners ``(0,0), (w-1,0), (w-1,h-1), (0,h-1)`` as ``4 x 2``."""
    return np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], dtype=np.float64)


def corner_error(H_est: np.ndarray | None, H_gt: np.ndarray, width: int, height: int) -> float:
    """Mean distance between the 4 image corners warped by ``H_est`` and by ``H_gt``.

    ``(width, height)`` is the size of the image the corners belong to (image 0 in the
    standard protocol). Returns ``inf`` when ``H_est`` is ``None`` or degenerate.
    """
    if H_est is None or not np.all(np.isfinite(H_est)):
        return float("inf")
    c = image_corners(width, height)
    err = np.linalg.norm(warp_points(H_est, c) - warp_points(H_gt, c), axis=1)
    return float(err.mean()) if np.all(np.isfinite(err)) else float("inf")
