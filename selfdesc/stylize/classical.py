"""Classical (numpy/OpenCV) stylizers: colour transfer from style images and parametric renderings.

Two families:

* **Style-bank transfer** (need a :class:`~selfdesc.stylize.style_bank.StyleBank`):
  :class:`LabTransfer` (Reinhard mean/std transfer in CIE LAB) and :class:`HistogramMatch`
  (per-channel CDF matching). One style image is drawn per call.
* **Parametric renderings** of a condition, each strength drawn uniformly from a documented
  range per call: :class:`DayToNight`, :class:`Dusk`, :class:`Overcast`, :class:`Fog`,
  :class:`LowLight`. They work in linear light (sRGB decoded), so exposure, light and haze
  mix physically, and re-encode to sRGB.

:class:`MixedStylizer` picks one of several per call. No stylizer here moves a pixel: every
operation is per-pixel or a spatially smooth gain/blend (plus blur of at most ~1 px), so the
output is pixel-aligned with the input. All randomness comes from the ``rng`` argument.

LAB is OpenCV's float CIE L*a*b* (D65): ``L`` in ``[0, 100]``, ``a, b`` about ``[-127, 127]``.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import cv2
import numpy as np

from selfdesc.datasets.photometric import gaussian_blur
from selfdesc.errors import ConfigError
from selfdesc.stylize.base import Stylizer, apply_stylizer
from selfdesc.stylize.style_bank import StyleBank, as_style_bank

Range = tuple[float, float]

# --------------------------------------------------------------------------- helpers


def _check_range(owner: str, field: str, value: Range, lo: float, hi: float) -> Range:
    """Validate a ``(min, max)`` parameter range inside ``[lo, hi]``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {field} must be a (min, max) pair, got {value!r}") from None
    if not (lo <= a <= b <= hi):
        raise ConfigError(f"{owner}: {field} = ({a}, {b}) must satisfy {lo} <= min <= max <= {hi}")
    return a, b


def _draw(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    """Decode sRGB values in ``[0, 1]`` to linear light (IEC 61966-2-1)."""
    x = np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    """Encode linear light to sRGB in ``[0, 1]`` (clips first)."""
    x = np.clip(linear, 0.0, 1.0).astype(np.float32, copy=False)
    return np.where(x <= 0.0031308, 12.92 * x, 1.055 * x ** (1 / 2.4) - 0.055).astype(np.float32)


def _luminance(linear: np.ndarray) -> np.ndarray:
    """Rec. 709 luminance of linear RGB, ``H x W x 1``."""
    return linear @ np.array([[0.2126], [0.7152], [0.0722]], np.float32)


def _saturate(linear: np.ndarray, amount: float | np.ndarray) -> np.ndarray:
    """Scale chroma around the luminance (``0``: grey, ``1``: unchanged, ``> 1``: more vivid)."""
    y = _luminance(linear)
    return y + np.asarray(amount, np.float32) * (linear - y)


def compress_contrast(linear: np.ndarray, exponent: float) -> np.ndarray:
    """Raise luminance to ``exponent`` around its log-mean (``< 1``: flatter light), keeping chroma ratios."""
    y = np.maximum(_luminance(linear), 1e-4)
    log_y = np.log(y)
    log_mean = float(log_y.mean())
    return linear * (np.exp(log_mean + np.float32(exponent) * (log_y - log_mean)) / y)


def geometric_mean_luminance(linear: np.ndarray) -> float:
    """``exp(mean(log(Y)))`` of linear RGB (luminance floored at 1e-4)."""
    return float(np.exp(np.log(np.maximum(_luminance(linear), 1e-4)).mean()))


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, blobs: float) -> np.ndarray:
    """A smooth random ``H x W`` field in ``[0, 1]`` with about ``blobs`` bumps along the longer side."""
    h, w = shape
    longest = max(h, w)
    gh = max(2, round(blobs * h / longest) + 2)
    gw = max(2, round(blobs * w / longest) + 2)
    coarse = rng.standard_normal((gh, gw)).astype(np.float32)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    field = gaussian_blur(field, 0.25 * longest / blobs)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _ramp(shape: tuple[int, int], angle_deg: float) -> np.ndarray:
    """Linear ramp ``H x W`` from 0 to 1 across the image, rising in direction ``angle_deg`` (y down)."""
    h, w = shape
    a = math.radians(angle_deg)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    proj = x * math.cos(a) + y * math.sin(a)
    lo, hi = float(proj.min()), float(proj.max())
    return (proj - lo) / max(hi - lo, 1e-6)


def _sky_mask(linear: np.ndarray) -> np.ndarray:
    """Soft ``H x W x 1`` guess of bright sky: bright pixels in the upper part of the frame."""
    h, w = linear.shape[:2]
    y = _luminance(linear)[..., 0]
    bright = np.clip((y - 0.25) / 0.45, 0.0, 1.0)
    top = np.clip(1.0 - np.arange(h, dtype=np.float32) / (0.65 * h), 0.0, 1.0)[:, None]
    mask = gaussian_blur(bright * top, 0.004 * max(h, w))
    return mask[..., None]


def sensor_noise(linear: np.ndarray, rng: np.random.Generator, photons_at_white: float, read_sigma: float) -> np.ndarray:
    """Shot (Poisson, ``photons_at_white`` photo-electrons at signal 1) plus Gaussian read noise."""
    k = np.float32(photons_at_white)
    shot = rng.poisson(np.clip(linear, 0.0, None) * k).astype(np.float32) / k
    return shot + rng.normal(0.0, read_sigma, size=linear.shape).astype(np.float32)


def _light_pools(shape: tuple[int, int], rng: np.random.Generator, count: int, radius: Range, colour_jitter: float) -> np.ndarray:
    """``H x W x 3`` sum of warm Gaussian light pools (street lamps), peak 1 each."""
    h, w = shape
    longest = max(h, w)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    light = np.zeros((h, w, 3), np.float32)
    for _ in range(count):
        cx, cy = rng.uniform(0, w), rng.uniform(0.15 * h, h)
        r = _draw(rng, radius) * longest
        colour = np.array([1.0, 0.72, 0.42], np.float32) + rng.uniform(-colour_jitter, colour_jitter, 3).astype(np.float32)
        pool = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
        light += pool[..., None] * np.clip(colour, 0.0, 1.2)
    return light


# --------------------------------------------------------------------------- style-bank transfer


def _require_bank(owner: str, style_bank: StyleBank | None) -> StyleBank:
    if style_bank is None:
        raise ConfigError(f"{owner} needs a style bank (a folder or a list of style images; CLI: --style-bank DIR)")
    return style_bank


class LabTransfer(Stylizer):
    """Reinhard colour transfer: match the per-channel LAB mean and std to a random style image.

    ``out_c = (in_c - mean_in_c) * std_style_c / max(std_in_c, 1) + mean_style_c`` for
    ``c`` in L, a, b (the floor of 1 LAB unit keeps near-grey inputs from amplifying chroma
    noise), then back to RGB and clipped to ``[0, 1]``.

    Args:
        style_bank: the style images (:class:`StyleBank`, folder or list of arrays).
    """

    name = "lab_transfer"

    def __init__(self, style_bank: StyleBank | str | Sequence[np.ndarray] | None = None) -> None:
        self.style_bank = _require_bank(self.name, as_style_bank(style_bank))

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        style = cv2.cvtColor(self.style_bank.draw(rng), cv2.COLOR_RGB2Lab).reshape(-1, 3)
        lab = cv2.cvtColor(np.ascontiguousarray(image, np.float32), cv2.COLOR_RGB2Lab)
        mean_in, std_in = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
        scale = style.std(0) / np.maximum(std_in, 1.0)
        out = (lab - mean_in) * scale + style.mean(0)
        return np.clip(cv2.cvtColor(out.astype(np.float32), cv2.COLOR_Lab2RGB), 0.0, 1.0)


def match_channel(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Map ``source`` values so that their empirical CDF equals ``reference``'s (any shapes)."""
    values, inverse, counts = np.unique(source.ravel(), return_inverse=True, return_counts=True)
    src_cdf = (np.cumsum(counts) - 0.5 * counts) / source.size
    ref_sorted = np.sort(reference.ravel())
    ref_cdf = (np.arange(ref_sorted.size, dtype=np.float64) + 0.5) / ref_sorted.size
    mapped = np.interp(src_cdf, ref_cdf, ref_sorted)
    return mapped[inverse].reshape(source.shape).astype(np.float32)


class HistogramMatch(Stylizer):
    """Per-channel histogram (CDF) matching to a random style image.

    Each channel's values are remapped by a monotonic curve so that their distribution
    equals the style image's. Monotonic curves never move or invert an edge.

    Args:
        style_bank: the style images (:class:`StyleBank`, folder or list of arrays).
        space: ``"lab"`` (default: L, a, b matched independently; lightness and chroma
            follow the style, hue correlations of the content are kept) or ``"rgb"``
            (R, G, B matched independently; stronger colour casts).
    """

    name = "histogram_match"

    def __init__(self, style_bank: StyleBank | str | Sequence[np.ndarray] | None = None, space: str = "lab") -> None:
        if space not in ("lab", "rgb"):
            raise ConfigError(f"{self.name}: space must be 'lab' or 'rgb', got {space!r}")
        self.style_bank = _require_bank(self.name, as_style_bank(style_bank))
        self.space = space

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        style = self.style_bank.draw(rng)
        src = np.ascontiguousarray(image, np.float32)
        if self.space == "lab":
            src, style = cv2.cvtColor(src, cv2.COLOR_RGB2Lab), cv2.cvtColor(style, cv2.COLOR_RGB2Lab)
        out = np.stack([match_channel(src[..., c], style[..., c]) for c in range(3)], axis=-1)
        if self.space == "lab":
            out = cv2.cvtColor(out, cv2.COLOR_Lab2RGB)
        return np.clip(out, 0.0, 1.0)


# --------------------------------------------------------------------------- parametric renderings


class DayToNight(Stylizer):
    """Night: dim bluish moonlight, darkened sky, warm street-light pools, a little sensor noise.

    In linear light: ``night = day * g * (moon_tint + lamp_ratio * lamps) + noise`` where the day
    image stands in for surface albedo (bright sky first darkened, sunlight/shadow contrast
    flattened) and ``g`` sets the geometric-mean luminance of the moonlit image to ``ambient``,
    so dark and bright inputs give equally dark nights.

    Args (each a ``(min, max)`` range drawn uniformly per call):
        ambient: geometric-mean luminance under moonlight, linear (0.005-0.015; sRGB ~0.06-0.12).
        saturation: chroma kept under moonlight (0.2-0.5; scotopic vision is nearly grey).
        blueness: moonlight tint strength; gains ``(1 - .45 b, 1 - .15 b, 1 + .3 b)`` (0.4-1).
        sky_darkening: fraction of the bright-sky light removed (0.7-0.95).
        flatten: luminance contrast exponent removing direct sunlight (0.5-0.8; 1 = unchanged).
        lamps: number of warm light pools (1-6, integer).
        lamp_radius: pool radius, fraction of the longer side (0.04-0.14).
        lamp_ratio: pool peak light relative to the moonlight (3-10).
        photons: photo-electrons at white (sensor shot noise; 800-3000).
        read_noise: read-noise std in linear units (0.001-0.004).
    """

    name = "day_to_night"

    def __init__(
        self,
        ambient: Range = (0.005, 0.015),
        saturation: Range = (0.2, 0.5),
        blueness: Range = (0.4, 1.0),
        sky_darkening: Range = (0.7, 0.95),
        flatten: Range = (0.5, 0.8),
        lamps: Range = (1, 6),
        lamp_radius: Range = (0.04, 0.14),
        lamp_ratio: Range = (3.0, 10.0),
        photons: Range = (800, 3000),
        read_noise: Range = (0.001, 0.004),
    ) -> None:
        n = self.name
        self.ambient = _check_range(n, "ambient", ambient, 0.0, 1.0)
        self.saturation = _check_range(n, "saturation", saturation, 0.0, 2.0)
        self.blueness = _check_range(n, "blueness", blueness, 0.0, 2.0)
        self.sky_darkening = _check_range(n, "sky_darkening", sky_darkening, 0.0, 1.0)
        self.flatten = _check_range(n, "flatten", flatten, 0.05, 2.0)
        self.lamps = _check_range(n, "lamps", lamps, 0, 100)
        self.lamp_radius = _check_range(n, "lamp_radius", lamp_radius, 0.001, 2.0)
        self.lamp_ratio = _check_range(n, "lamp_ratio", lamp_ratio, 0.0, 100.0)
        self.photons = _check_range(n, "photons", photons, 1.0, 1e7)
        self.read_noise = _check_range(n, "read_noise", read_noise, 0.0, 1.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lin = srgb_to_linear(image)
        lin = lin * (1.0 - _draw(rng, self.sky_darkening) * _sky_mask(lin))
        lin = _saturate(compress_contrast(lin, _draw(rng, self.flatten)), _draw(rng, self.saturation))
        b = _draw(rng, self.blueness)
        moon = np.array([1 - 0.45 * b, 1 - 0.15 * b, 1 + 0.3 * b], np.float32)
        gain = _draw(rng, self.ambient) / geometric_mean_luminance(lin * moon)
        count = int(rng.integers(int(self.lamps[0]), int(self.lamps[1]) + 1))
        lamps = _light_pools(lin.shape[:2], rng, count, self.lamp_radius, 0.08) * _draw(rng, self.lamp_ratio)
        night = lin * gain * (moon + lamps)
        night = sensor_noise(night, rng, _draw(rng, self.photons), _draw(rng, self.read_noise))
        return linear_to_srgb(night)


class Dusk(Stylizer):
    """Dusk / golden hour: low warm sunlight from one side, cool skylight, warm sky.

    In linear light the scene is lit by a mix of warm sun and cool skylight whose share
    varies along a random direction, then the (bright) sky region is tinted orange-pink.

    Args (each a ``(min, max)`` range drawn uniformly per call):
        exposure: overall gain in linear light (0.25-0.6).
        sun_share: largest share of warm sunlight across the image (0.5-0.9; the opposite side
            gets ``sun_share - sun_falloff``).
        sun_falloff: drop of the sun share across the image (0.3-0.6).
        warmth: sun colour strength; gains ``(1, 1 - .3 w, 1 - .65 w)`` (0.6-1).
        sky_tint: blend of the sky towards orange-pink (0.4-0.8).
        saturation: chroma gain (1.0-1.3).
    """

    name = "dusk"

    def __init__(
        self,
        exposure: Range = (0.25, 0.6),
        sun_share: Range = (0.5, 0.9),
        sun_falloff: Range = (0.3, 0.6),
        warmth: Range = (0.6, 1.0),
        sky_tint: Range = (0.4, 0.8),
        saturation: Range = (1.0, 1.3),
    ) -> None:
        n = self.name
        self.exposure = _check_range(n, "exposure", exposure, 0.0, 2.0)
        self.sun_share = _check_range(n, "sun_share", sun_share, 0.0, 1.0)
        self.sun_falloff = _check_range(n, "sun_falloff", sun_falloff, 0.0, 1.0)
        self.warmth = _check_range(n, "warmth", warmth, 0.0, 1.5)
        self.sky_tint = _check_range(n, "sky_tint", sky_tint, 0.0, 1.0)
        self.saturation = _check_range(n, "saturation", saturation, 0.0, 2.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lin = srgb_to_linear(image)
        h, w = lin.shape[:2]
        warm = _draw(rng, self.warmth)
        sun = np.array([1.0, 1 - 0.3 * warm, 1 - 0.65 * warm], np.float32)
        sky_light = np.array([0.55, 0.65, 1.0], np.float32)
        angle = float(rng.choice([0.0, 180.0])) + float(rng.uniform(-30, 30))  # sun from the left or right
        share = _draw(rng, self.sun_share) - _draw(rng, self.sun_falloff) * _ramp((h, w), angle)
        share = np.clip(share, 0.0, 1.0)[..., None]
        light = (share * sun + (1 - share) * sky_light) * _draw(rng, self.exposure)
        out = _saturate(lin, _draw(rng, self.saturation)) * light
        sky = _sky_mask(lin) * _draw(rng, self.sky_tint)
        glow = _luminance(out) * np.array([1.6, 0.85, 0.6], np.float32)  # orange-pink, same luminance
        out = (1 - sky) * out + sky * glow
        return linear_to_srgb(out)


class Overcast(Stylizer):
    """Overcast: flat diffuse light (compressed contrast), muted colours, white-grey sky.

    Args (each a ``(min, max)`` range drawn uniformly per call):
        contrast: exponent on luminance around its log-mean (0.5-0.8; 1 = unchanged).
        brightness: overall gain in linear light (0.7-1.0).
        saturation: chroma kept (0.45-0.8).
        coolness: bluish-grey cast; gains ``(1 - .05 c, 1, 1 + .06 c)`` (0-1).
        sky_whitening: blend of the bright sky towards flat white-grey (0.6-1.0).
    """

    name = "overcast"

    def __init__(
        self,
        contrast: Range = (0.5, 0.8),
        brightness: Range = (0.7, 1.0),
        saturation: Range = (0.45, 0.8),
        coolness: Range = (0.0, 1.0),
        sky_whitening: Range = (0.6, 1.0),
    ) -> None:
        n = self.name
        self.contrast = _check_range(n, "contrast", contrast, 0.05, 2.0)
        self.brightness = _check_range(n, "brightness", brightness, 0.0, 3.0)
        self.saturation = _check_range(n, "saturation", saturation, 0.0, 2.0)
        self.coolness = _check_range(n, "coolness", coolness, 0.0, 3.0)
        self.sky_whitening = _check_range(n, "sky_whitening", sky_whitening, 0.0, 1.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lin = srgb_to_linear(image)
        sky = _sky_mask(lin) * _draw(rng, self.sky_whitening)
        out = compress_contrast(_saturate(lin, _draw(rng, self.saturation)), _draw(rng, self.contrast))
        out = out * _draw(rng, self.brightness)
        c = _draw(rng, self.coolness)
        out = out * np.array([1 - 0.05 * c, 1.0, 1 + 0.06 * c], np.float32)
        grey = np.float32(min(float(np.percentile(_luminance(out), 99)), 1.0)) * np.array([0.97, 0.98, 1.0], np.float32)
        return linear_to_srgb((1 - sky) * out + sky * grey)


class Fog(Stylizer):
    """Fog / mist with a depth-free haze model: ``I = J t + A (1 - t)`` in linear light.

    The optical depth ``d`` mixes a vertical ramp (the top of a photo is usually farther)
    with a smooth random field; transmission ``t = exp(-density * d)`` is smooth, so edges
    lose contrast but never move. A mild blur models forward scattering.

    Args (each a ``(min, max)`` range drawn uniformly per call):
        density: extinction ``beta`` at the largest depth (0.5-1.8; ``t`` down to ~0.17).
        base_depth: depth everywhere (haze in front of the nearest object; 0.1-0.35).
        ramp_share: weight of the vertical ramp vs. the random field in ``d`` (0.3-0.8).
        airlight: airlight brightness in linear light (0.5-0.85).
        tint: airlight colour jitter per channel, ``+-`` (0-0.04).
        blur_sigma: scattering blur in pixels (0-1).
    """

    name = "fog"

    def __init__(
        self,
        density: Range = (0.5, 1.8),
        base_depth: Range = (0.1, 0.35),
        ramp_share: Range = (0.3, 0.8),
        airlight: Range = (0.5, 0.85),
        tint: Range = (0.0, 0.04),
        blur_sigma: Range = (0.0, 1.0),
    ) -> None:
        n = self.name
        self.density = _check_range(n, "density", density, 0.0, 20.0)
        self.base_depth = _check_range(n, "base_depth", base_depth, 0.0, 1.0)
        self.ramp_share = _check_range(n, "ramp_share", ramp_share, 0.0, 1.0)
        self.airlight = _check_range(n, "airlight", airlight, 0.0, 1.0)
        self.tint = _check_range(n, "tint", tint, 0.0, 0.5)
        self.blur_sigma = _check_range(n, "blur_sigma", blur_sigma, 0.0, 3.0)

    def transmission(self, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A random smooth transmission map ``H x W x 1`` in ``(0, 1]``."""
        share = _draw(rng, self.ramp_share)
        depth = share * (1.0 - _ramp(shape, 90.0)) + (1 - share) * smooth_field(shape, rng, blobs=4.0)
        base = _draw(rng, self.base_depth)
        depth = base + (1 - base) * depth
        return np.exp(-_draw(rng, self.density) * depth)[..., None].astype(np.float32)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        lin = srgb_to_linear(image)
        t = self.transmission(lin.shape[:2], rng)
        jitter = _draw(rng, self.tint)
        airlight = _draw(rng, self.airlight) * (1 + rng.uniform(-jitter, jitter, 3)).astype(np.float32)
        out = lin * t + airlight * (1 - t)
        return linear_to_srgb(gaussian_blur(out, _draw(rng, self.blur_sigma)))


class LowLight(Stylizer):
    """Low light: under-exposed capture brightened by the camera, so sensor noise shows.

    In linear light: blur (optics/shake), scale by ``exposure``, add shot + read noise and
    blotchy colour noise, apply the camera gain up to ``brightened`` (a fraction of the
    original exposure), encode to sRGB with an extra ``gamma``.

    Args (each a ``(min, max)`` range drawn uniformly per call):
        exposure: light reaching the sensor, linear gain (0.02-0.12).
        brightened: final exposure after the camera's gain (0.15-0.45; < exposure: none).
        photons: photo-electrons at white before the exposure cut (300-2000).
        read_noise: read-noise std in linear units of the sensor (0.001-0.004).
        colour_noise: std of low-frequency per-channel gain noise (0.02-0.08).
        blur_sigma: pixels (0.3-1.0).
        gamma: extra exponent after sRGB encoding (1.0-1.3; > 1 darker mid-tones).
    """

    name = "low_light"

    def __init__(
        self,
        exposure: Range = (0.02, 0.12),
        brightened: Range = (0.15, 0.45),
        photons: Range = (300, 2000),
        read_noise: Range = (0.001, 0.004),
        colour_noise: Range = (0.02, 0.08),
        blur_sigma: Range = (0.3, 1.0),
        gamma: Range = (1.0, 1.3),
    ) -> None:
        n = self.name
        self.exposure = _check_range(n, "exposure", exposure, 1e-4, 1.0)
        self.brightened = _check_range(n, "brightened", brightened, 0.0, 2.0)
        self.photons = _check_range(n, "photons", photons, 1.0, 1e7)
        self.read_noise = _check_range(n, "read_noise", read_noise, 0.0, 1.0)
        self.colour_noise = _check_range(n, "colour_noise", colour_noise, 0.0, 1.0)
        self.blur_sigma = _check_range(n, "blur_sigma", blur_sigma, 0.0, 3.0)
        self.gamma = _check_range(n, "gamma", gamma, 0.2, 5.0)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        exposure = _draw(rng, self.exposure)
        lin = gaussian_blur(srgb_to_linear(image), _draw(rng, self.blur_sigma)) * exposure
        raw = sensor_noise(lin, rng, _draw(rng, self.photons), _draw(rng, self.read_noise))
        sigma = _draw(rng, self.colour_noise)
        blotches = np.stack([smooth_field((h, w), rng, blobs=24.0) for _ in range(3)], axis=-1)
        raw = raw * (1 + sigma * 2 * (blotches - blotches.mean((0, 1))))
        gain = max(_draw(rng, self.brightened) / exposure, 1.0)
        return linear_to_srgb(raw * gain) ** np.float32(_draw(rng, self.gamma))


# --------------------------------------------------------------------------- mixture

#: the stylizers of a default :class:`MixedStylizer` (the style-bank ones only when a bank is given)
PARAMETRIC = (DayToNight, Dusk, Overcast, Fog, LowLight)
STYLE_BANK_BASED = (LabTransfer, HistogramMatch)


class MixedStylizer(Stylizer):
    """Pick one stylizer per call (with ``rng``), by weight.

    Args:
        stylizers: the candidates (any objects following the interface); default: the five
            parametric renderings, plus :class:`LabTransfer` and :class:`HistogramMatch` when
            ``style_bank`` is given.
        weights: relative weights, either a sequence aligned with ``stylizers`` or a mapping
            ``name -> weight``. Default: equal.
        default_weight: weight of the stylizers missing from a ``weights`` mapping (default 0).
        style_bank: style images for the default candidates.
    """

    name = "mixed"

    def __init__(
        self,
        stylizers: Sequence[Stylizer] | None = None,
        weights: Sequence[float] | Mapping[str, float] | None = None,
        default_weight: float = 0.0,
        style_bank: StyleBank | str | Sequence[np.ndarray] | None = None,
    ) -> None:
        if stylizers is None:
            bank = as_style_bank(style_bank)
            stylizers = [cls() for cls in PARAMETRIC]
            if bank is not None:
                stylizers += [cls(bank) for cls in STYLE_BANK_BASED]
        self.stylizers = list(stylizers)
        if not self.stylizers:
            raise ConfigError("mixed: no stylizers to choose from")
        names = [getattr(s, "name", type(s).__name__) for s in self.stylizers]
        if weights is None:
            w = np.ones(len(names))
        elif isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise ConfigError(f"mixed: weights for unknown stylizer(s) {', '.join(unknown)} (have: {', '.join(names)})")
            w = np.array([float(weights.get(n, default_weight)) for n in names])
        else:
            w = np.asarray(list(weights), dtype=np.float64)
            if w.shape != (len(names),):
                raise ConfigError(f"mixed: {w.size} weights for {len(names)} stylizers")
        if (w < 0).any() or not np.isfinite(w).all() or w.sum() <= 0:
            raise ConfigError(f"mixed: weights must be finite, >= 0 and not all 0, got {w.tolist()}")
        self.names = names
        self.probabilities = w / w.sum()

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        choice = int(rng.choice(len(self.stylizers), p=self.probabilities))
        return apply_stylizer(self.stylizers[choice], image, rng)
