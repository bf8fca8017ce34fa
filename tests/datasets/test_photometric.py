"""Photometric ops: known answers, identity, determinism, growing strength."""
from __future__ import annotations

import numpy as np
import pytest

from selfdesc.datasets.photometric import (
    PhotometricParams,
    PhotometricRanges,
    add_noise,
    adjust_exposure,
    adjust_gamma,
    apply_photometric,
    colour_cast,
    gaussian_blur,
    jpeg_roundtrip,
    sample_photometric_params,
    shading_gradient,
)


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.uniform(0.2, 0.8, size=(6, 8, 3)), np.ones((8, 8, 1)))
    return smooth.astype(np.float32)  # 48 x 64 x 3


def test_pointwise_ops_known_answers():
    x = np.full((2, 2, 3), 0.5, np.float32)
    np.testing.assert_allclose(adjust_exposure(x, 1.5), 0.75)
    np.testing.assert_allclose(adjust_exposure(x, 4.0), 1.0)  # clipped
    np.testing.assert_allclose(adjust_gamma(x, 2.0), 0.25)
    np.testing.assert_allclose(colour_cast(x, (1.0, 0.5, 2.0))[0, 0], [0.5, 0.25, 1.0])


def test_shading_gradient_ramps_along_its_direction():
    x = np.full((10, 101, 3), 0.5, np.float32)
    out = shading_gradient(x, 0.5, 0.0)  # rising to the right: 0.5 * (1 -/+ 0.5) at the ends
    assert out[5, 0, 0] == pytest.approx(0.25, abs=0.01) and out[5, 100, 0] == pytest.approx(0.75, abs=0.01)
    assert out[5, 50, 0] == pytest.approx(0.5) and np.allclose(out[0], out[9])
    flipped = shading_gradient(x, 0.5, 180.0)
    np.testing.assert_allclose(flipped[:, ::-1], out, atol=1e-6)


def test_blur_noise_jpeg(image):
    assert gaussian_blur(image, 0.0) is image
    blurred = gaussian_blur(image, 2.0)
    assert np.abs(np.diff(blurred, axis=1)).max() < np.abs(np.diff(image, axis=1)).max()
    a = add_noise(image, 0.05, np.random.default_rng(7))
    np.testing.assert_array_equal(a, add_noise(image, 0.05, np.random.default_rng(7)))
    assert np.std(a - image) == pytest.approx(0.05, rel=0.1)
    low, high = jpeg_roundtrip(image, 10), jpeg_roundtrip(image, 95)
    assert low.shape == image.shape and low.dtype == np.float32
    assert np.abs(high - image).mean() < np.abs(low - image).mean()


def test_identity_params_change_nothing(image):
    out = apply_photometric(image, PhotometricParams(), np.random.default_rng(0))
    np.testing.assert_allclose(out, image, atol=1e-6)
    assert out.dtype == np.float32 and out.shape == image.shape


def test_sampling_is_seeded_and_grows_with_strength(image):
    ranges = PhotometricRanges()
    p = sample_photometric_params(np.random.default_rng(1), 1.0, ranges)
    assert p == sample_photometric_params(np.random.default_rng(1), 1.0, ranges)
    assert ranges.min_jpeg_quality <= p.jpeg_quality <= 100 and 0 < p.blur_sigma <= ranges.max_blur_sigma
    assert 1 / ranges.max_exposure <= p.exposure_gain <= ranges.max_exposure
    weak = sample_photometric_params(np.random.default_rng(1), 0.0, ranges)
    assert weak.exposure_gain == 1.0 and weak.gamma == 1.0 and weak.jpeg_quality == 100 and weak.noise_sigma == 0.0
    change = []
    for strength in (0.2, 1.0):
        diffs = []
        for seed in range(20):
            rng = np.random.default_rng(seed)
            out = apply_photometric(image, sample_photometric_params(rng, strength, ranges), rng)
            diffs.append(np.abs(out - image).mean())
        change.append(np.mean(diffs))
    assert change[1] > 2 * change[0] > 0
