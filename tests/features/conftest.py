"""Helpers shared by the feature-extractor tests: test images and keypoint comparisons."""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import pytest
import torch

from selfdesc.io import load_image
from tests.conftest import shared_path


def nearest_offsets(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor, max_dist: float = 2.0) -> np.ndarray:
    """For each point of ``a`` with a point of ``b`` within ``max_dist``: ``a - nearest(b)``, ``K x 2``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((0, 2))
    d = np.linalg.norm(a[:, None] - b[None], axis=2)
    j = d.argmin(1)
    ok = d[np.arange(len(a)), j] < max_dist
    return (a - b[j])[ok]


@pytest.fixture
def offsets() -> Callable[..., np.ndarray]:
    """:func:`nearest_offsets`, as a fixture."""
    return nearest_offsets


@pytest.fixture(scope="session")
def texture() -> np.ndarray:
    """A 240 x 320 RGB float image of smooth random texture (no shared data needed)."""
    rng = np.random.default_rng(0)
    noise = rng.random((240, 320)).astype(np.float32)
    img = cv2.GaussianBlur(noise, (0, 0), 2.0) + 0.5 * cv2.GaussianBlur(noise, (0, 0), 6.0)
    img = (img - img.min()) / (img.max() - img.min())
    return np.repeat(img[:, :, None], 3, axis=2)


def astronaut_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 240x320 crop of scikit-image's astronaut and its warp by a known homography (image-0 -> image-1)."""
    from skimage import data

    image0 = np.ascontiguousarray(data.astronaut()[40:280, 100:420])
    H = np.array([[0.95, 0.08, 6.0], [-0.06, 0.97, 9.0], [2e-4, -1e-4, 1.0]])
    image1 = cv2.warpPerspective(image0, H, (320, 240), flags=cv2.INTER_LINEAR)
    return image0, image1, H


@pytest.fixture(scope="session")
def graf1() -> np.ndarray:
    """graf image 1 (800 x 640 RGB float); skips when ../shared is absent."""
    return load_image(shared_path("eval/hpatches-graf/v_graffiti/1.ppm")).image


def squares_image() -> tuple[np.ndarray, np.ndarray]:
    """120 x 160 RGB image of 4 white squares on black and their 16 corners (pixel-centre coordinates).

    A square covering pixels ``x0 .. x0 + s - 1`` has its corners at ``x0 - 0.5`` and ``x0 + s - 0.5``.
    """
    img = np.zeros((120, 160), np.float32)
    corners = []
    for x0, y0, s in [(20, 20, 30), (90, 25, 40), (30, 70, 30), (100, 80, 25)]:
        img[y0 : y0 + s, x0 : x0 + s] = 1.0
        corners += [[x0 - 0.5, y0 - 0.5], [x0 + s - 0.5, y0 - 0.5], [x0 + s - 0.5, y0 + s - 0.5], [x0 - 0.5, y0 + s - 0.5]]
    return np.repeat(img[:, :, None], 3, axis=2), np.array(corners)


@pytest.fixture
def squares() -> tuple[np.ndarray, np.ndarray]:
    """:func:`squares_image`, as a fixture."""
    return squares_image()
