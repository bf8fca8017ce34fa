"""Batched photometric augmentation: range, identity, determinism, and what each op does."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.methods.parts.augment import PhotometricAugment, PhotometricConfig

COLOR_WEIGHTS = ("w_brightness_contrast", "w_hue_saturation", "w_clahe", "w_gray", "w_channel_shuffle")
NOTHING = PhotometricConfig(p_color=0.0, p_blur=0.0, p_noise=0.0)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(batch: int = 8, size: int = 64, seed: int = 0) -> torch.Tensor:
    low = torch.rand(batch, 3, size // 8, size // 8, generator=gen(seed))
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)


def only_color(weight: str) -> PhotometricConfig:
    return replace(NOTHING, p_color=1.0, **{w: float(w == weight) for w in COLOR_WEIGHTS})


def run(config: PhotometricConfig, x: torch.Tensor, seed: int = 1) -> torch.Tensor:
    return PhotometricAugment(config)(x, gen(seed))


def test_range_shape_and_dtype():
    x = images(16)
    x[:4] = 0.0
    x[4:8] = 1.0
    cfg = PhotometricConfig(p_color=1.0, p_blur=1.0, p_noise=1.0)
    y = run(cfg, x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert run(PhotometricConfig(), x).min() >= 0.0


def test_identity_when_disabled_or_nothing_drawn():
    x = images()
    assert torch.equal(run(PhotometricConfig(enabled=False, p_color=1.0, p_noise=1.0), x), x)
    assert torch.equal(run(NOTHING, x), x)


def test_deterministic_with_a_seeded_generator():
    x = images(32)
    cfg = PhotometricConfig(p_color=0.9, p_blur=0.5, p_noise=0.5)
    assert torch.equal(run(cfg, x, 3), run(cfg, x, 3))
    assert not torch.equal(run(cfg, x, 3), run(cfg, x, 4))


def test_brightness_contrast_is_an_affine_map_within_limits():
    x = images(8) * 0.5 + 0.25  # no clipping
    y = run(only_color("w_brightness_contrast"), x)
    for b in range(8):
        xs, ys = x[b].flatten(), y[b].flatten()
        A = torch.stack([xs, torch.ones_like(xs)], 1)
        (alpha, beta) = torch.linalg.lstsq(A, ys[:, None]).solution[:, 0]
        assert torch.allclose(A @ torch.stack([alpha, beta]), ys, atol=1e-5)
        assert 0.8 - 1e-5 <= alpha <= 1.2 + 1e-5 and abs(beta) <= 0.3 + 1e-5
        assert not torch.allclose(ys, xs)


def test_hue_saturation_changes_colour_but_keeps_value():
    x = images(8)
    y = run(only_color("w_hue_saturation"), x)
    assert torch.allclose(y.amax(1), x.amax(1), atol=1e-4)  # HSV value = max(R, G, B) is not shifted
    assert ((y - x).abs().flatten(1).amax(1) > 0.01).all()


def test_clahe_raises_contrast_of_a_dull_image():
    x = images(4, size=128) * 0.2 + 0.4
    y = run(only_color("w_clahe"), x)
    assert (y.flatten(1).std(1) > 1.2 * x.flatten(1).std(1)).all()


def test_gray_makes_channels_equal():
    x = images(4)
    y = run(only_color("w_gray"), x)
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])
    assert torch.allclose(y[:, 0], 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2], atol=1e-5)


def test_channel_shuffle_permutes_channels():
    x = images(16)
    y = run(only_color("w_channel_shuffle"), x)
    changed = 0
    for b in range(16):
        perm = [next(c for c in range(3) if torch.equal(y[b, k], x[b, c])) for k in range(3)]
        assert sorted(perm) == [0, 1, 2]
        changed += perm != [0, 1, 2]
    assert changed >= 8  # identity is one of the 6 permutations


@pytest.mark.parametrize("kind", ["w_gaussian_blur", "w_box_blur"])
def test_blurs_smooth_noise_and_keep_constants(kind):
    gaussian = kind == "w_gaussian_blur"
    cfg = replace(NOTHING, p_blur=1.0, w_gaussian_blur=float(gaussian), w_box_blur=float(not gaussian))
    noise = torch.rand(8, 3, 32, 32, generator=gen())
    y = run(cfg, noise)
    assert (y.flatten(1).std(1) < 0.75 * noise.flatten(1).std(1)).all()
    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(run(cfg, flat), flat, atol=1e-6)


def test_noise_has_the_configured_strength():
    x = torch.full((64, 3, 32, 32), 0.5)
    y = run(replace(NOTHING, p_noise=1.0), x)
    sd = (y - x).flatten(1).std(1) * 255
    assert (sd > 10**0.5 * 0.85).all() and (sd < 50**0.5 * 1.15).all()
    assert sd.max() - sd.min() > 1.5  # the variance is drawn per sample


def test_probabilities_and_selection_weights():
    x = images(3000, size=16)
    y = run(replace(NOTHING, p_color=0.6, **{w: float(w == "w_gray") for w in COLOR_WEIGHTS}), x)
    assert 0.57 < (y != x).flatten(1).any(1).double().mean() < 0.63
    weights = {"w_brightness_contrast": 0.7, "w_hue_saturation": 0.0, "w_clahe": 0.0, "w_gray": 0.5, "w_channel_shuffle": 0.0}
    cfg = replace(NOTHING, p_color=1.0, **weights)
    y = run(cfg, x)
    gray = (y[:, 0] == y[:, 1]).flatten(1).all(1) & (y[:, 1] == y[:, 2]).flatten(1).all(1)
    assert abs(gray.double().mean() - 0.5 / 1.2) < 0.03


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="p_blur"):
        PhotometricConfig(p_blur=1.5)
    with pytest.raises(ConfigError, match="blur_kernel"):
        PhotometricConfig(blur_kernel=(4, 7))
    with pytest.raises(ValueError, match="B, 3, H, W"):
        PhotometricAugment()(torch.rand(3, 8, 8))
