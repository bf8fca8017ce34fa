import numpy as np
import torch

from selfdesc.geometry.homography import corner_error, scale_homography, warp_points, warp_points_torch


def _random_h(rng):
    H = np.eye(3) + rng.normal(0, [[0.1, 0.1, 5], [0.1, 0.1, 5], [1e-4, 1e-4, 0]])
    return H / H[2, 2]


def test_round_trip():
    rng = np.random.default_rng(0)
    H = _random_h(rng)
    pts = rng.uniform(0, 500, (100, 2))
    back = warp_points(np.linalg.inv(H), warp_points(H, pts))
    np.testing.assert_allclose(back, pts, atol=1e-8)


def test_torch_matches_numpy():
    rng = np.random.default_rng(1)
    H = _random_h(rng)
    pts = rng.uniform(0, 500, (50, 2))
    out = warp_points_torch(torch.from_numpy(H)[None], torch.from_numpy(pts)[None])[0].numpy()
    np.testing.assert_allclose(out, warp_points(H, pts), atol=1e-9)


def test_scale_homography_is_consistent_with_pixel_centres():
    rng = np.random.default_rng(2)
    H = _random_h(rng)
    s0, s1 = (2.0, 2.5), (0.5, 1.25)
    Hs = scale_homography(H, s0, s1)
    p_small = rng.uniform(0, 100, (20, 2))
    p_orig = (p_small + 0.5) * np.array(s0) - 0.5
    q_orig = warp_points(H, p_orig)
    q_small = (q_orig + 0.5) / np.array(s1) - 0.5
    np.testing.assert_allclose(warp_points(Hs, p_small), q_small, atol=1e-8)


def test_corner_error():
    H = np.eye(3)
    assert corner_error(H, H, 640, 480) == 0.0
    shifted = np.array([[1, 0, 3.0], [0, 1, 4.0], [0, 0, 1]])
    assert abs(corner_error(shifted, H, 640, 480) - 5.0) < 1e-12
    assert corner_error(None, H, 10, 10) == float("inf")
