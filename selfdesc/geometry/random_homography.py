"""Random viewpoint homographies (HPatches-like), for synthetic benchmarks and training pairs.

A viewpoint change is described by :class:`HomographyParams` and turned into a ``3 x 3``
homography by :func:`homography_from_params`. It is composed about the image centre ``c``:

``H = T(c + t * (W, H)) @ RS(rotation, scale) @ Tilt(tilt, axis) @ T(-c)``

* ``Tilt``: the plane-induced homography of a camera orbiting the scene point seen at the
  image centre by ``tilt`` degrees about an in-plane axis at ``tilt_axis`` degrees from the x axis
  (focal length ``focal_factor * max(W, H)`` pixels; the centre stays put, the far side shrinks);
* ``RS``: in-plane rotation (degrees; positive turns x towards y, i.e. clockwise on screen)
  and isotropic scale;
* ``T``: translation, ``t`` in fractions of the image size.

Homographies map source pixels to target pixels, pixel-centre convention (x right, y down):
``cv2.warpPerspective(src, H, (W, H))`` renders the target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np


@dataclass(frozen=True)
class HomographyParams:
    """One viewpoint change (see the module docstring for the composition).

    Attributes:
        tilt_deg: out-of-plane camera rotation about the centre point, degrees (>= 0).
        tilt_axis_deg: direction of the tilt axis in the image plane, degrees from the x axis.
        rotation_deg: in-plane rotation, degrees.
        scale: isotropic scale (> 1 zooms in).
        translation: ``(tx, ty)`` shift of the centre in fractions of ``(W, H)``.
    """

    tilt_deg: float = 0.0
    tilt_axis_deg: float = 0.0
    rotation_deg: float = 0.0
    scale: float = 1.0
    translation: tuple[float, float] = (0.0, 0.0)

    def scaled(self, t: float) -> HomographyParams:
        """The change ``t`` of the way from the identity (``t = 1``: itself; scale goes geometrically)."""
        return replace(
            self,
            tilt_deg=self.tilt_deg * t,
            rotation_deg=self.rotation_deg * t,
            scale=float(self.scale**t),
            translation=(self.translation[0] * t, self.translation[1] * t),
        )


@dataclass(frozen=True)
class HomographyRanges:
    """Ranges of :func:`sample_homography_params` and the acceptance test of the samplers.

    A sampled magnitude is ``U(min_fraction, 1) * max`` (with a random sign for rotation and
    log-scale); translation is ``U(-max_translation, max_translation)`` per axis.

    Attributes:
        max_tilt_deg: largest out-of-plane tilt (HPatches/graf reach about 60 degrees).
        max_rotation_deg: largest in-plane rotation.
        max_scale: largest zoom factor; zoom-out goes down to ``1 / max_scale``.
        max_translation: largest centre shift, fraction of the image size.
        min_fraction: smallest magnitude, as a fraction of the maxima above.
        focal_factor: focal length of the tilt camera in units of the longest image side.
        min_visible: smallest fraction of the source image that must land in the target frame.
        min_coverage: smallest fraction of the target frame that must be covered by the source.
        max_tries: samples drawn before falling back to shrinking the last one.
    """

    max_tilt_deg: float = 55.0
    max_rotation_deg: float = 40.0
    max_scale: float = 1.6
    max_translation: float = 0.1
    min_fraction: float = 0.3
    focal_factor: float = 1.0
    min_visible: float = 0.35
    min_coverage: float = 0.4
    max_tries: int = 100


def _translate(tx: float, ty: float) -> np.ndarray:
    return np.array([[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]])


def _tilt(tilt_deg: float, axis_deg: float, focal: float) -> np.ndarray:
    """Plane-induced homography (centred pixel coordinates) of a camera orbiting the optical-axis
    point of a fronto-parallel plane: ``K (R + (p0 - R p0) n^T) K^-1`` with ``p0 = n = e_z``."""
    theta, phi = math.radians(tilt_deg), math.radians(axis_deg)
    axis = np.array([math.cos(phi), math.sin(phi), 0.0])
    R = cv2.Rodrigues(axis * theta)[0]
    e_z = np.array([0.0, 0.0, 1.0])
    G = R + np.outer(e_z - R @ e_z, e_z)
    K = np.diag([focal, focal, 1.0])
    return K @ G @ np.linalg.inv(K)


def homography_from_params(
    params: HomographyParams, width: int, height: int, focal_factor: float = 1.0
) -> np.ndarray:
    """The ``3 x 3`` float64 homography of ``params`` for a ``width x height`` image.

    Maps source pixels to target pixels (pixel centres; target frame the same size), normalised
    so that ``H[2, 2] = 1``.
    """
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a = math.radians(params.rotation_deg)
    s = params.scale
    rs = np.array([[s * math.cos(a), -s * math.sin(a), 0.0], [s * math.sin(a), s * math.cos(a), 0.0], [0.0, 0.0, 1.0]])
    tilt = _tilt(params.tilt_deg, params.tilt_axis_deg, focal_factor * max(width, height))
    tx, ty = params.translation
    H = _translate(cx + tx * width, cy + ty * height) @ rs @ tilt @ _translate(-cx, -cy)
    return H / H[2, 2]


def overlap_fractions(
    H: np.ndarray, size0: tuple[int, int], size1: tuple[int, int] | None = None
) -> tuple[float, float]:
    """How much of image 0 lands in image 1 under ``H``, and how much of image 1 it covers.

    Args:
        H: ``3 x 3``, image-0 pixels to image-1 pixels.
        size0, size1: ``(W, H)`` of the images (``size1`` defaults to ``size0``).

    Returns:
        ``(visible, coverage)``: area of ``H(frame0) ∩ frame1`` divided by the area of
        ``H(frame0)`` and by the area of ``frame1``. ``(0, 0)`` when part of image 0 is sent
        through or behind the horizon (the warped frame is then not a bounded quadrilateral).
    """
    w0, h0 = size0
    w1, h1 = size1 or size0
    frame0 = np.array([[-0.5, -0.5, 1], [w0 - 0.5, -0.5, 1], [w0 - 0.5, h0 - 0.5, 1], [-0.5, h0 - 0.5, 1]])
    hom = frame0 @ np.asarray(H, np.float64).T
    if not np.all(hom[:, 2] > 1e-9 * np.abs(hom[:, :2]).max()):
        return 0.0, 0.0
    quad = (hom[:, :2] / hom[:, 2:]).astype(np.float32)
    frame1 = np.array([[-0.5, -0.5], [w1 - 0.5, -0.5], [w1 - 0.5, h1 - 0.5], [-0.5, h1 - 0.5]], np.float32)
    area = abs(cv2.contourArea(quad))
    if area <= 0:
        return 0.0, 0.0
    inter, _ = cv2.intersectConvexConvex(quad, frame1)
    return float(inter / area), float(inter / (w1 * h1))


def sample_homography_params(rng: np.random.Generator, ranges: HomographyRanges = HomographyRanges()) -> HomographyParams:
    """Draw one full-strength viewpoint change (no acceptance test; see :class:`HomographyRanges`)."""

    def magnitude(maximum: float) -> float:
        return float(rng.uniform(ranges.min_fraction, 1.0) * maximum)

    def signed(maximum: float) -> float:
        return magnitude(maximum) * float(rng.choice([-1.0, 1.0]))

    tilt = magnitude(ranges.max_tilt_deg)
    axis = float(rng.uniform(0.0, 180.0)) * float(rng.choice([-1.0, 1.0]))
    rotation = signed(ranges.max_rotation_deg)
    scale = math.exp(signed(math.log(ranges.max_scale)))
    t = rng.uniform(-ranges.max_translation, ranges.max_translation, size=2)
    return HomographyParams(tilt, axis, rotation, scale, (float(t[0]), float(t[1])))


def _accepted(H: np.ndarray, width: int, height: int, ranges: HomographyRanges) -> bool:
    visible, coverage = overlap_fractions(H, (width, height))
    return visible >= ranges.min_visible and coverage >= ranges.min_coverage


def sample_homography_sequence(
    rng: np.random.Generator,
    width: int,
    height: int,
    count: int = 6,
    ranges: HomographyRanges = HomographyRanges(),
) -> list[np.ndarray]:
    """Homographies ``H_1_k``, ``k = 2..count``, of one progressive viewpoint sequence.

    One full-strength change ``p`` is drawn; image ``k`` gets ``p.scaled((k - 1) / (count - 1))``
    (the camera keeps moving the same way, as in an HPatches ``v_`` sequence). ``p`` is redrawn
    until every step passes the overlap test; after ``ranges.max_tries`` draws the last one is
    shrunk by 0.8 until it passes.

    Returns:
        ``count - 1`` float64 ``3 x 3`` arrays, image-1 pixels to image-k pixels.
    """
    if count < 2:
        raise ValueError(f"a sequence needs at least 2 images, got {count}")
    steps = [(k - 1) / (count - 1) for k in range(2, count + 1)]

    def build(p: HomographyParams) -> list[np.ndarray]:
        return [homography_from_params(p.scaled(t), width, height, ranges.focal_factor) for t in steps]

    for _ in range(ranges.max_tries):
        params = sample_homography_params(rng, ranges)
        Hs = build(params)
        if all(_accepted(H, width, height, ranges) for H in Hs):
            return Hs
    while not all(_accepted(H, width, height, ranges) for H in Hs):
        params = params.scaled(0.8)
        Hs = build(params)
    return Hs


def sample_homography(
    rng: np.random.Generator,
    width: int,
    height: int,
    ranges: HomographyRanges = HomographyRanges(),
    strength: float = 1.0,
) -> np.ndarray:
    """One random viewpoint homography of a ``width x height`` image (same-size target).

    Args:
        rng: the random source.
        width, height: image size in pixels.
        ranges: magnitudes and the overlap test.
        strength: fraction of the full-strength change (``0`` gives the identity).

    Returns:
        ``3 x 3`` float64, source pixels to target pixels (pixel centres).
    """
    scaled = replace(
        ranges,
        max_tilt_deg=ranges.max_tilt_deg * strength,
        max_rotation_deg=ranges.max_rotation_deg * strength,
        max_scale=ranges.max_scale**strength,
        max_translation=ranges.max_translation * strength,
    )
    return sample_homography_sequence(rng, width, height, count=2, ranges=scaled)[0]
