"""Photometric changes (illumination and camera), for synthetic ``i_`` sequences and training.

Every op takes and returns an ``H x W x 3`` float32 RGB image in ``[0, 1]`` (the ops that can
leave that range clip) and never moves pixels by more than the blur footprint, so the identity
homography stays exact. :func:`apply_photometric` chains them in a fixed order: scene lighting
(shading gradient, colour cast, exposure), then the camera (blur, sensor noise, gamma, JPEG).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


def adjust_exposure(image: np.ndarray, gain: float) -> np.ndarray:
    """Multiply by ``gain`` (> 1 brighter) and clip."""
    return np.clip(image * np.float32(gain), 0.0, 1.0)


def adjust_gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    """``image ** gamma`` (> 1 darker mid-tones)."""
    return np.power(np.clip(image, 0.0, 1.0), np.float32(gamma))


def colour_cast(image: np.ndarray, gains: tuple[float, float, float]) -> np.ndarray:
    """Per-channel RGB gains, then clip."""
    return np.clip(image * np.asarray(gains, np.float32).reshape(1, 1, 3), 0.0, 1.0)


def shading_gradient(image: np.ndarray, amplitude: float, angle_deg: float) -> np.ndarray:
    """Multiply by a linear ramp from ``1 - amplitude`` to ``1 + amplitude`` across the image,
    rising in direction ``angle_deg`` (degrees from the x axis); then clip."""
    h, w = image.shape[:2]
    a = math.radians(angle_deg)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = (x - (w - 1) / 2) * math.cos(a) + (y - (h - 1) / 2) * math.sin(a)
    half = 0.5 * (abs(w * math.cos(a)) + abs(h * math.sin(a)))
    ramp = 1.0 + amplitude * proj / max(half, 1.0)
    return np.clip(image * ramp[..., None].astype(np.float32), 0.0, 1.0)


def gaussian_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels (``0``: unchanged)."""
    if sigma <= 0:
        return image
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def add_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add Gaussian sensor noise of standard deviation ``sigma`` (image units), then clip."""
    if sigma <= 0:
        return image
    noise = rng.normal(0.0, sigma, size=image.shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0)


def jpeg_roundtrip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode as JPEG of ``quality`` (1-100) in memory and decode (8-bit quantisation included)."""
    bgr = cv2.cvtColor(to_uint8(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float ``[0, 1]`` to uint8 with rounding."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


@dataclass(frozen=True)
class PhotometricParams:
    """One photometric change; the defaults are the identity (up to 8-bit rounding)."""

    shading_amplitude: float = 0.0
    shading_angle_deg: float = 0.0
    colour_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)
    exposure_gain: float = 1.0
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    gamma: float = 1.0
    jpeg_quality: int | None = None


@dataclass(frozen=True)
class PhotometricRanges:
    """Full-strength (``strength = 1``) ranges of :func:`sample_photometric_params`.

    A magnitude is ``U(min_fraction, 1) * strength * max`` (random sign for the log-gains).

    Attributes:
        max_exposure: largest exposure factor; darkening goes down to ``1 / max_exposure``.
        max_gamma: largest gamma; down to ``1 / max_gamma``.
        max_colour_cast: largest per-channel log-gain (independent per channel).
        max_shading: largest shading-ramp amplitude (``0.6``: 0.4x to 1.6x across the image).
        max_blur_sigma: largest blur, pixels.
        max_noise_sigma: largest noise standard deviation (image units, ``0.03`` ~ 8/255).
        min_jpeg_quality: JPEG quality at full strength (100 at strength 0).
        min_fraction: smallest magnitude, fraction of the maxima.
    """

    max_exposure: float = 2.5
    max_gamma: float = 1.8
    max_colour_cast: float = 0.25
    max_shading: float = 0.6
    max_blur_sigma: float = 1.5
    max_noise_sigma: float = 0.03
    min_jpeg_quality: int = 40
    min_fraction: float = 0.3


def sample_photometric_params(
    rng: np.random.Generator, strength: float = 1.0, ranges: PhotometricRanges = PhotometricRanges()
) -> PhotometricParams:
    """Draw one photometric change whose magnitudes grow with ``strength`` in ``[0, 1]``."""

    def magnitude(maximum: float) -> float:
        return float(rng.uniform(ranges.min_fraction, 1.0) * strength * maximum)

    def log_gain(maximum: float) -> float:
        return math.exp(magnitude(math.log(maximum)) * float(rng.choice([-1.0, 1.0])))

    shading = magnitude(ranges.max_shading)
    angle = float(rng.uniform(-180.0, 180.0))
    cast = rng.uniform(-1.0, 1.0, size=3) * strength * ranges.max_colour_cast
    exposure = log_gain(ranges.max_exposure)
    blur = magnitude(ranges.max_blur_sigma)
    noise = magnitude(ranges.max_noise_sigma)
    gamma = log_gain(ranges.max_gamma)
    quality = int(round(100 - magnitude(100 - ranges.min_jpeg_quality)))
    return PhotometricParams(
        shading_amplitude=shading,
        shading_angle_deg=angle,
        colour_gains=tuple(float(g) for g in np.exp(cast)),  # type: ignore[arg-type]
        exposure_gain=exposure,
        blur_sigma=blur,
        noise_sigma=noise,
        gamma=gamma,
        jpeg_quality=quality,
    )


def apply_photometric(image: np.ndarray, params: PhotometricParams, rng: np.random.Generator) -> np.ndarray:
    """Apply ``params`` to an ``H x W x 3`` float32 RGB image in ``[0, 1]`` (``rng`` draws the noise).

    Returns:
        ``H x W x 3`` float32 in ``[0, 1]``, same size (no geometric change).
    """
    out = shading_gradient(image, params.shading_amplitude, params.shading_angle_deg)
    out = colour_cast(out, params.colour_gains)
    out = adjust_exposure(out, params.exposure_gain)
    out = gaussian_blur(out, params.blur_sigma)
    out = add_noise(out, params.noise_sigma, rng)
    out = adjust_gamma(out, params.gamma)
    if params.jpeg_quality is not None:
        out = jpeg_roundtrip(out, params.jpeg_quality)
    return out.astype(np.float32, copy=False)
