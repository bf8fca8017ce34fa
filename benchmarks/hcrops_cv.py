"""Per-image OpenCV reference of the H-crops generator (the CPU baseline of the pair benchmark).

Same algorithm and conventions as :mod:`selfdesc.methods.parts.hcrops` (spec §2.4, quirks fixed the
same way), written the way a CPU data loader would: one image at a time, NumPy draws,
``cv2.getPerspectiveTransform`` and ``cv2.warpPerspective`` (bilinear, constant black border).
The overlap test uses the exact polygon areas of :func:`overlap_fractions` instead of a pixel
grid. It exists to time and cross-check the batched torch version, not for training.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from selfdesc.geometry.random_homography import overlap_fractions
from selfdesc.methods.parts.hcrops import HCropsConfig


def crop_homography_cv(
    zoom: float, angle: float, center: np.ndarray, distort: np.ndarray, vertical: bool, crop_size: int
) -> np.ndarray:
    """Image-to-crop homography of one crop from its parameters (spec §2.4 steps 7-9).

    Args:
        zoom, angle (radians), center ``(2,)``, distort ``(f1, f2)``, vertical: as in
        :class:`~selfdesc.methods.parts.hcrops.CropParams`.
        crop_size: crop side ``S``.

    Returns:
        ``3 x 3`` float64, image pixels to crop pixels.
    """
    h = (crop_size - 1) / 2.0
    corners = np.array([[-h, -h], [h, -h], [-h, h], [h, h]]) * zoom
    f1, f2 = distort
    if vertical:
        corners[:, 1] *= [f1, f2, f1, f2]
    else:
        corners[:, 0] *= [f1, f1, f2, f2]
    c, s = math.cos(angle), math.sin(angle)
    image_pts = corners @ np.array([[c, s], [-s, c]]) + np.asarray(center, np.float64)
    n = crop_size - 1
    square = np.array([[0, 0], [n, 0], [0, n], [n, n]], np.float32)
    H = cv2.getPerspectiveTransform(image_pts.astype(np.float32), square).astype(np.float64)
    # same sign convention as the torch version: the image quad maps with w > 0
    return -H if (image_pts @ H[2, :2] + H[2, 2]).sum() < 0 else H


def sample_crop_cv(
    width: int, height: int, config: HCropsConfig, rng: np.random.Generator, center: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one crop (spec §2.4 steps 1-9); returns ``(H image->crop, crop centre)``."""
    u_s, u_r, u_c0, u_c1, u_p0, u_p1, u_a = rng.random(7)
    S = config.crop_size
    zoom = config.min_zoom * u_s + config.max_zoom_out * (1.0 - u_s)
    if center is None:
        rho = 0.5 * math.sqrt(2.0) * S * zoom
        center = rho + np.array([u_c0, u_c1]) * (np.array([width, height], np.float64) - 2.0 * rho)
    else:
        signs = np.where(np.array([u_c0, u_c1]) < 0.5, -1.0, 1.0)
        center = np.asarray(center, np.float64) + config.center_jitter * S * signs
    vertical = bool(u_a < 0.5)
    m = config.min_distort[int(vertical)]
    distort = m * np.array([u_p0, u_p1]) + (1.0 - np.array([u_p0, u_p1]))
    angle = (2.0 * u_r - 1.0) * math.radians(config.max_rot_deg)
    return crop_homography_cv(zoom, angle, center, distort, vertical, S), center


def _project(H: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    hom = points @ H[:2, :2].T + H[:2, 2]
    w = points @ H[2, :2] + H[2, 2]
    front = w > 1e-12
    return hom / np.where(front, w, 1.0)[:, None], front


def _inside(points: np.ndarray, size: int) -> np.ndarray:
    return np.all((points >= 0) & (points <= size - 1), axis=1)


def _warp(image: np.ndarray, H: np.ndarray, size: int) -> np.ndarray:
    return cv2.warpPerspective(
        image, H, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def make_pair_cv(
    image: np.ndarray,
    keypoints: np.ndarray,
    config: HCropsConfig = HCropsConfig(),
    rng: np.random.Generator | None = None,
    image_b: np.ndarray | None = None,
) -> dict[str, np.ndarray | bool | int]:
    """One H-crops pair with OpenCV (see :func:`selfdesc.methods.parts.hcrops.make_pairs`).

    Args:
        image: ``H x W x 3`` (float32 in ``[0, 1]`` or uint8).
        keypoints: ``N x 2`` image keypoints ``(x, y)``, pixel centres.
        config: generator settings (``min_texture_std`` on the ``[0, 1]`` scale either way).
        rng: random source.
        image_b: source of crop B (default ``image``).

    Returns:
        dict with ``A``, ``B`` (``S x S x 3``, dtype of ``image``), ``H_AB``, ``H1``, ``H2``
        (``3 x 3`` float64), ``kpA``, ``kpB`` (``K x 2`` float32, 0 where not valid), ``valid``
        (``K`` bool), ``pair_valid`` (bool) and ``attempts`` (int).
    """
    rng = rng if rng is not None else np.random.default_rng()
    height, width = image.shape[:2]
    S = config.crop_size
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    kps = np.asarray(keypoints, np.float64).reshape(-1, 2)
    kps = kps[np.isfinite(kps).all(axis=1)]
    accepted = False
    for attempt in range(1, config.max_attempts + 1):
        H1, c1 = sample_crop_cv(width, height, config, rng)
        H2, _ = sample_crop_cv(width, height, config, rng, center=c1)
        H_AB = H2 @ np.linalg.inv(H1)
        kpA, front_a = _project(H1, kps)
        kpB, front_b = _project(H_AB, kpA)
        valid = front_a & front_b & _inside(kpA, S) & _inside(kpB, S)
        if valid.sum() < config.min_correspondences:
            continue
        a_in_b = overlap_fractions(H_AB, (S, S))[0]
        b_in_a = overlap_fractions(np.linalg.inv(H_AB), (S, S))[0]
        if a_in_b <= config.min_overlap or b_in_a <= config.min_overlap:
            continue
        crop_a = _warp(image, H1, S)
        if crop_a.astype(np.float32).mean(axis=2).std() >= config.min_texture_std * scale:
            accepted = True
            break
    else:
        crop_a = _warp(image, H1, S)
    crop_b = _warp(image if image_b is None else image_b, H2, S)

    K = config.num_keypoints
    chosen = np.flatnonzero(valid) if accepted else np.zeros(0, np.int64)
    chosen = chosen[:K] if config.first_k_quirk else rng.permutation(chosen)[:K]
    kp_a = np.zeros((K, 2), np.float32)
    kp_b = np.zeros((K, 2), np.float32)
    kp_a[: len(chosen)], kp_b[: len(chosen)] = kpA[chosen], kpB[chosen]
    return {
        "A": crop_a,
        "B": crop_b,
        "H_AB": H_AB,
        "H1": H1,
        "H2": H2,
        "kpA": kp_a,
        "kpB": kp_b,
        "valid": np.arange(K) < len(chosen),
        "pair_valid": accepted,
        "attempts": attempt,
    }
