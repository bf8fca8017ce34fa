"""RANSAC verification on synthetic scenes with known geometry and planted outliers."""
from __future__ import annotations

import numpy as np
import pytest

from selfdesc.errors import ConfigError
from selfdesc.pipeline.verify import verify_matches

K = np.array([[500.0, 0, 319.5], [0, 500.0, 239.5], [0, 0, 1]])


def _with_outliers(x0, x1, rng, fraction=0.3):
    n_out = int(len(x0) * fraction)
    x0 = np.concatenate([x0, rng.uniform([0, 0], [640, 480], (n_out, 2))])
    x1 = np.concatenate([x1, rng.uniform([0, 0], [640, 480], (n_out, 2))])
    truth = np.r_[np.ones(len(x0) - n_out, bool), np.zeros(n_out, bool)]
    matches = np.stack([np.arange(len(x0))] * 2, axis=1)
    return x0, x1, matches, truth


def _check(inliers, truth, max_false=0.05):
    assert inliers[truth].mean() > 0.95
    assert inliers[~truth].mean() <= max_false


def _homography_scene(rng):
    H = np.array([[0.9, 0.1, 20.0], [-0.05, 1.0, 10.0], [1e-4, 5e-5, 1.0]])
    x0 = rng.uniform([0, 0], [640, 480], (200, 2))
    h = np.c_[x0, np.ones(200)] @ H.T
    x1 = h[:, :2] / h[:, 2:] + rng.normal(scale=0.3, size=(200, 2))
    return H, x0, x1


def _two_view_scene(rng):
    X = np.c_[rng.uniform(-2, 2, (200, 2)), rng.uniform(4, 8, 200)]
    a = 0.1
    R = np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])
    t = np.array([-1.0, 0.1, 0.2])
    def project(P):
        p = P @ K.T
        return p[:, :2] / p[:, 2:]
    return project(X), project(X @ R.T + t) + rng.normal(scale=0.3, size=(200, 2))


@pytest.mark.parametrize("backend", ["opencv", "poselib"])
def test_homography_inliers_and_matrix(backend):
    rng = np.random.default_rng(0)
    H, x0, x1 = _homography_scene(rng)
    x0, x1, matches, truth = _with_outliers(x0, x1, rng)
    v = verify_matches(x0, x1, matches, "homography", threshold=2.0, backend=backend)
    _check(v.inliers, truth, max_false=0.0)
    corners = np.array([[0, 0, 1], [639, 0, 1], [0, 479, 1], [639, 479, 1.0]])
    a, b = corners @ H.T, corners @ v.matrix.T
    assert np.abs(a[:, :2] / a[:, 2:] - b[:, :2] / b[:, 2:]).max() < 2.0


@pytest.mark.parametrize("backend", ["opencv", "poselib"])
def test_fundamental_and_essential_inliers(backend):
    rng = np.random.default_rng(1)
    x0, x1 = _two_view_scene(rng)
    x0, x1, matches, truth = _with_outliers(x0, x1, rng)
    vf = verify_matches(x0, x1, matches, "fundamental", threshold=1.5, backend=backend)
    _check(vf.inliers, truth)
    h0, h1 = np.c_[x0[truth], np.ones(truth.sum())], np.c_[x1[truth], np.ones(truth.sum())]
    line = h0 @ vf.matrix.T  # epipolar lines in image 1
    dist = np.abs((h1 * line).sum(1)) / np.linalg.norm(line[:, :2], axis=1)
    assert np.median(dist) < 1.0
    ve = verify_matches(x0, x1, matches, "essential", threshold=1.5, backend=backend, K0=K, K1=K)
    _check(ve.inliers, truth)


def test_too_few_matches_and_bad_options():
    kp = np.zeros((3, 2))
    v = verify_matches(kp, kp, np.array([[0, 0], [1, 1], [2, 2]]), "homography")
    assert v.inliers.tolist() == [False] * 3 and v.matrix is None
    with pytest.raises(ConfigError, match="intrinsics"):
        verify_matches(kp, kp, np.zeros((0, 2)), "essential")
    with pytest.raises(ConfigError, match="unknown verification model"):
        verify_matches(kp, kp, np.zeros((0, 2)), "affine")
