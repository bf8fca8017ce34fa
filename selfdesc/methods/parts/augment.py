"""HNDesc's photometric augmentation (spec §2.5) as a batched torch module (kornia ops).

The recipe is albumentations 1.1's, as used by HNDesc on 8-bit crops, applied in this order
with an independent random choice per sample:

1. with probability ``p_color`` one of (selection weights in brackets)
   brightness/contrast [0.7], hue/saturation [0.7], CLAHE [0.5], to-gray [0.5],
   channel shuffle [0.1];
2. with probability ``p_blur`` one of Gaussian blur [0.5], box blur [0.5] (kernel 3-7);
3. with probability ``p_noise`` additive Gaussian noise (variance 10-50 on the 0-255 scale).

Call the module once for A and once for B to augment them independently. Images stay float
in ``[0, 1]`` (no 8-bit rounding between ops, unlike albumentations on uint8); the ImageNet
normalisation of spec §1 is the network's job, not this module's.

Parameter conventions carried over from albumentations 1.1 on uint8 images [RECALL of its
source, spec §2.5 notes the same caveat]: the hue shift of ±10 is in OpenCV's 0-179 hue units,
i.e. ±20 degrees; the saturation shift of ±30 is on the 0-255 scale; brightness is added as a
fraction of the maximum (``x * alpha + beta``); CLAHE runs on the L channel of Lab with a clip
limit drawn in ``[1, 4]`` (OpenCV units, which kornia shares) on 8x8 tiles; the Gaussian-blur
kernel is drawn from {3, 4, 5, 6, 7} with even sizes bumped up (3: 1/5, 5: 2/5, 7: 2/5) and
sigma from OpenCV's rule ``0.3 * ((k - 1) / 2 - 1) + 0.8``; the box-blur kernel is uniform
over {3, 5, 7}; borders are reflected (OpenCV's default ``BORDER_REFLECT_101``).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import kornia
import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.methods.parts.rng import normal, uniform

_PERMUTATIONS = torch.tensor(list(itertools.permutations(range(3))))


@dataclass(frozen=True)
class PhotometricConfig:
    """Settings of :class:`PhotometricAugment`; the defaults are HNDesc's (spec §2.5).

    Attributes:
        enabled: False makes the module the identity.
        p_color: probability of applying one colour op; ``w_*`` are their selection weights.
        brightness_limit: additive brightness offset drawn in ``[-limit, limit]`` (``[0, 1]`` scale).
        contrast_limit: contrast factor drawn in ``[1 - limit, 1 + limit]``.
        hue_shift_deg: hue shift drawn in ``[-hue_shift_deg, hue_shift_deg]``.
        saturation_shift: additive saturation shift drawn in ``[-s, s]`` (``[0, 1]`` scale).
        clahe_clip_limit: range of the CLAHE clip limit (OpenCV units).
        clahe_grid: CLAHE tiles ``(rows, cols)``.
        p_blur: probability of one blur op; ``w_gaussian_blur``, ``w_box_blur`` select it.
        blur_kernel: smallest and largest (odd) kernel size.
        p_noise: probability of additive Gaussian noise.
        noise_var: range of the noise variance on the 0-255 scale (per pixel and channel).
    """

    enabled: bool = True
    p_color: float = 0.6
    w_brightness_contrast: float = 0.7
    w_hue_saturation: float = 0.7
    w_clahe: float = 0.5
    w_gray: float = 0.5
    w_channel_shuffle: float = 0.1
    brightness_limit: float = 0.3
    contrast_limit: float = 0.2
    hue_shift_deg: float = 20.0
    saturation_shift: float = 30.0 / 255.0
    clahe_clip_limit: tuple[float, float] = (1.0, 4.0)
    clahe_grid: tuple[int, int] = (8, 8)
    p_blur: float = 0.3
    w_gaussian_blur: float = 0.5
    w_box_blur: float = 0.5
    blur_kernel: tuple[int, int] = (3, 7)
    p_noise: float = 0.1
    noise_var: tuple[float, float] = (10.0, 50.0)

    def __post_init__(self) -> None:
        problems = []
        for name in ("p_color", "p_blur", "p_noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be in [0, 1], got {getattr(self, name)}")
        for group in (self.color_weights, self.blur_weights):
            if min(group) < 0 or sum(group) <= 0:
                problems.append(f"selection weights must be >= 0 with a positive sum, got {group}")
        lo, hi = self.blur_kernel
        if not (lo >= 1 and lo % 2 == 1 and hi % 2 == 1 and hi >= lo):
            problems.append(f"blur_kernel must be two odd sizes lo <= hi, got {self.blur_kernel}")
        if not 0 < self.clahe_clip_limit[0] <= self.clahe_clip_limit[1]:
            problems.append(f"clahe_clip_limit must be 0 < lo <= hi, got {self.clahe_clip_limit}")
        if not 0 <= self.noise_var[0] <= self.noise_var[1]:
            problems.append(f"noise_var must be 0 <= lo <= hi, got {self.noise_var}")
        if problems:
            raise ConfigError("PhotometricConfig: " + "; ".join(problems))

    @property
    def color_weights(self) -> tuple[float, float, float, float, float]:
        """Selection weights of brightness/contrast, hue/saturation, CLAHE, gray, channel shuffle."""
        return (self.w_brightness_contrast, self.w_hue_saturation, self.w_clahe, self.w_gray, self.w_channel_shuffle)

    @property
    def blur_weights(self) -> tuple[float, float]:
        """Selection weights of Gaussian blur and box blur."""
        return (self.w_gaussian_blur, self.w_box_blur)


def _choose(u: torch.Tensor, weights: tuple[float, ...]) -> torch.Tensor:
    """Categorical index per sample from ``u ~ U[0, 1)`` and selection weights."""
    w = torch.tensor(weights, dtype=u.dtype, device=u.device)
    edges = torch.cumsum(w / w.sum(), 0)[:-1]
    return torch.bucketize(u.contiguous(), edges, right=True)


class PhotometricAugment(nn.Module):
    """Batched HNDesc photometric augmentation (see the module docstring).

    ``forward(images (B, 3, H, W) float in [0, 1], generator=None) -> (B, 3, H, W)`` in
    ``[0, 1]``, each sample with its own random choices; runs on the images' device.
    """

    def __init__(self, config: PhotometricConfig = PhotometricConfig()) -> None:
        super().__init__()
        self.config = config
        self._clahe_op = kornia.augmentation.RandomClahe(
            config.clahe_clip_limit, config.clahe_grid, p=1.0, keepdim=True
        )

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"PhotometricAugment: images must be (B, 3, H, W), got {tuple(images.shape)}")
        cfg = self.config
        if not cfg.enabled:
            return images
        u = uniform((len(images), 9), generator, images.device)
        out = images.clone()
        color = torch.where(u[:, 0] < cfg.p_color, _choose(u[:, 1], cfg.color_weights), -1)
        color_ops = (self._brightness_contrast, self._hue_saturation, self._clahe, self._gray, self._channel_shuffle)
        for op_id, op in enumerate(color_ops):
            sel = (color == op_id).nonzero().squeeze(1)
            if sel.numel():
                out[sel] = op(out[sel], u[sel, 2], u[sel, 3])
        blur = torch.where(u[:, 4] < cfg.p_blur, _choose(u[:, 5], cfg.blur_weights), -1)
        for op_id, op in enumerate((self._gaussian_blur, self._box_blur)):
            sel = (blur == op_id).nonzero().squeeze(1)
            if sel.numel():
                out[sel] = op(out[sel], u[sel, 6])
        sel = (u[:, 7] < cfg.p_noise).nonzero().squeeze(1)
        if sel.numel():
            out[sel] = self._noise(out[sel], u[sel, 8], generator)
        return out.clamp_(0.0, 1.0)

    def _brightness_contrast(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        beta = (2.0 * a - 1.0) * self.config.brightness_limit
        alpha = 1.0 + (2.0 * b - 1.0) * self.config.contrast_limit
        return (x * alpha[:, None, None, None] + beta[:, None, None, None]).clamp(0.0, 1.0)

    def _hue_saturation(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        hsv = kornia.color.rgb_to_hsv(x)
        shift = (2.0 * a - 1.0) * math.radians(self.config.hue_shift_deg)
        hue = torch.remainder(hsv[:, 0] + shift[:, None, None], 2.0 * math.pi)
        sat = (hsv[:, 1] + ((2.0 * b - 1.0) * self.config.saturation_shift)[:, None, None]).clamp(0.0, 1.0)
        return kornia.color.hsv_to_rgb(torch.stack([hue, sat, hsv[:, 2]], dim=1)).clamp(0.0, 1.0)

    def _clahe(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config.clahe_clip_limit
        lab = kornia.color.rgb_to_lab(x)
        lightness = (lab[:, :1] / 100.0).clamp(0.0, 1.0)
        # one clip limit per sample, drawn by us and replayed through kornia's params interface
        params = {"clip_limit_factor": lo + (hi - lo) * a, "batch_prob": torch.ones_like(a, dtype=torch.bool)}
        equalized = self._clahe_op(lightness, params=params)
        return kornia.color.lab_to_rgb(torch.cat([equalized * 100.0, lab[:, 1:]], dim=1), clip=True)

    def _gray(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return kornia.color.rgb_to_grayscale(x).expand(-1, 3, -1, -1)

    def _channel_shuffle(self, x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        perm = _PERMUTATIONS.to(x.device)[(a * len(_PERMUTATIONS)).long().clamp_max(len(_PERMUTATIONS) - 1)]
        return x.gather(1, perm[:, :, None, None].expand_as(x))

    def _gaussian_blur(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config.blur_kernel
        k = lo + (u * (hi - lo + 1)).long().clamp_max(hi - lo)
        k = k + (k % 2 == 0).long()  # albumentations 1.1 bumps even sizes to the next odd one
        out = x.clone()
        for size in k.unique().tolist():
            sel = (k == size).nonzero().squeeze(1)
            sigma = 0.3 * ((size - 1) * 0.5 - 1.0) + 0.8
            out[sel] = kornia.filters.gaussian_blur2d(x[sel], (size, size), (sigma, sigma), border_type="reflect")
        return out

    def _box_blur(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        lo, hi = self.config.blur_kernel
        sizes = torch.arange(lo, hi + 1, 2, device=x.device)
        k = sizes[(u * len(sizes)).long().clamp_max(len(sizes) - 1)]
        out = x.clone()
        for size in k.unique().tolist():
            sel = (k == size).nonzero().squeeze(1)
            out[sel] = kornia.filters.box_blur(x[sel], (size, size), border_type="reflect")
        return out

    def _noise(self, x: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        lo, hi = self.config.noise_var
        sigma = torch.sqrt(lo + (hi - lo) * u) / 255.0
        noise = normal(tuple(x.shape), generator, x.device, x.dtype)
        return (x + sigma[:, None, None, None] * noise).clamp(0.0, 1.0)
