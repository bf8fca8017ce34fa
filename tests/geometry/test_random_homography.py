"""Random viewpoint homographies: known-answer geometry, overlap test, determinism."""
from __future__ import annotations

import math

import numpy as np
import pytest

from selfdesc.geometry.homography import image_corners, warp_points
from selfdesc.geometry.random_homography import (
    HomographyParams,
    HomographyRanges,
    homography_from_params,
    overlap_fractions,
    sample_homography,
    sample_homography_params,
    sample_homography_sequence,
)

W, H = 320, 240
CENTRE = np.array([[(W - 1) / 2, (H - 1) / 2]])


def jacobian_at(Hm: np.ndarray, p: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    cols = [(warp_points(Hm, p + d) - warp_points(Hm, p - d))[0] / (2 * eps) for d in np.eye(2) * eps]
    return np.stack(cols, axis=1)


def test_identity_params_give_identity():
    np.testing.assert_allclose(homography_from_params(HomographyParams(), W, H), np.eye(3), atol=1e-12)


def test_rotation_and_scale_about_the_centre():
    Hm = homography_from_params(HomographyParams(rotation_deg=90, scale=2.0), W, H)
    # positive rotation turns +x into +y (clockwise on screen), scale 2, centre fixed
    out = warp_points(Hm, np.concatenate([CENTRE, CENTRE + [[1, 0]]]))
    np.testing.assert_allclose(out[0], CENTRE[0], atol=1e-9)
    np.testing.assert_allclose(out[1] - out[0], [0, 2], atol=1e-9)


def test_tilt_foreshortens_across_the_axis_only():
    # tilting about the x axis by 60 degrees: centre fixed, local Jacobian diag(1, cos 60)
    Hm = homography_from_params(HomographyParams(tilt_deg=60, tilt_axis_deg=0), W, H)
    np.testing.assert_allclose(warp_points(Hm, CENTRE), CENTRE, atol=1e-9)
    np.testing.assert_allclose(jacobian_at(Hm, CENTRE), [[1, 0], [0, 0.5]], atol=1e-6)
    # a real perspective: the two sides along the tilt direction shrink differently
    top, bottom = warp_points(Hm, np.array([[0, 0], [0, H - 1]]))[:, 1]
    assert not math.isclose(CENTRE[0, 1] - top, bottom - CENTRE[0, 1], rel_tol=1e-3)


def test_translation_in_fractions_of_the_size():
    Hm = homography_from_params(HomographyParams(translation=(0.1, -0.25)), W, H)
    np.testing.assert_allclose(warp_points(Hm, np.zeros((1, 2))), [[0.1 * W, -0.25 * H]], atol=1e-9)


def test_scaled_interpolates_from_identity():
    p = HomographyParams(tilt_deg=40, tilt_axis_deg=30, rotation_deg=-20, scale=1.44, translation=(0.1, 0.2))
    assert p.scaled(1.0) == p
    np.testing.assert_allclose(homography_from_params(p.scaled(0.0), W, H), np.eye(3), atol=1e-12)
    half = p.scaled(0.5)
    assert half.scale == pytest.approx(1.2) and half.tilt_deg == 20 and half.tilt_axis_deg == 30


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (HomographyParams(), (1.0, 1.0)),
        (HomographyParams(scale=0.5), (1.0, 0.25)),
        (HomographyParams(scale=2.0), (0.25, 1.0)),
        (HomographyParams(translation=(0.5, 0.0)), (0.5, 0.5)),
        (HomographyParams(translation=(1.5, 0.0)), (0.0, 0.0)),
    ],
)
def test_overlap_fractions_known_answers(params, expected):
    got = overlap_fractions(homography_from_params(params, W, H), (W, H))
    np.testing.assert_allclose(got, expected, atol=1e-3)


def test_overlap_is_zero_when_the_frame_crosses_the_horizon():
    Hm = np.array([[1, 0, 0], [0, 1, 0], [-0.01, 0, 1.0]])  # w < 0 for x > 100
    assert overlap_fractions(Hm, (W, H)) == (0.0, 0.0)


def test_sequence_is_seeded_progressive_and_passes_the_overlap_test():
    ranges = HomographyRanges()
    for seed in range(10):
        Hs = sample_homography_sequence(np.random.default_rng(seed), W, H, count=6, ranges=ranges)
        again = sample_homography_sequence(np.random.default_rng(seed), W, H, count=6, ranges=ranges)
        assert len(Hs) == 5
        np.testing.assert_array_equal(np.stack(Hs), np.stack(again))
        for Hm in Hs:
            visible, coverage = overlap_fractions(Hm, (W, H))
            assert visible >= ranges.min_visible and coverage >= ranges.min_coverage
        corners = image_corners(W, H)
        moves = [np.linalg.norm(warp_points(Hm, corners) - corners, axis=1).mean() for Hm in Hs]
        assert moves[-1] > moves[0] > 1.0


def test_sequence_falls_back_to_shrinking_when_nothing_passes():
    # a 95 % visibility demand is rarely met by a full-strength draw: the sampler shrinks
    ranges = HomographyRanges(min_visible=0.95, min_coverage=0.95, max_tries=3)
    for Hm in sample_homography_sequence(np.random.default_rng(0), W, H, ranges=ranges):
        visible, coverage = overlap_fractions(Hm, (W, H))
        assert visible >= 0.95 and coverage >= 0.95


def test_sample_homography_strength():
    assert np.allclose(sample_homography(np.random.default_rng(0), W, H, strength=0.0), np.eye(3))
    ranges = HomographyRanges(max_translation=0.0)
    p = sample_homography_params(np.random.default_rng(3), ranges)
    assert ranges.min_fraction * ranges.max_tilt_deg <= p.tilt_deg <= ranges.max_tilt_deg
    assert 1 / ranges.max_scale <= p.scale <= ranges.max_scale and p.translation == (0.0, 0.0)
    weak = sample_homography(np.random.default_rng(0), W, H, strength=0.1)
    corners = image_corners(W, H)
    assert 0 < np.abs(warp_points(weak, corners) - corners).max() < 0.2 * W
