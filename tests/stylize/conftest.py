"""Synthetic test scenes for the stylizers: a bright sky over structured, coloured 'buildings'."""
from __future__ import annotations

import cv2
import numpy as np
import pytest


def make_scene(seed: int = 0, size: tuple[int, int] = (120, 160)) -> np.ndarray:
    """``H x W x 3`` float32 RGB in [0, 1]: sky gradient on top, rectangles, a disc and a checker texture."""
    h, w = size
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.float32)
    t = np.linspace(0.0, 1.0, h // 3, dtype=np.float32)[:, None]
    img[: h // 3] = (np.array([0.55, 0.7, 0.95]) * (1 - 0.3 * t) + 0.05)[:, None, :]
    img[h // 3 :] = (0.35, 0.33, 0.3)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 30)), int(rng.integers(h // 4, h - 20))
        colour = tuple(float(c) for c in rng.uniform(0.1, 0.9, 3))
        cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(12, 30)), y0 + int(rng.integers(10, 20))), colour, -1)
    cv2.circle(img, (w // 2, h // 2), h // 8, (0.9, 0.8, 0.2), -1)
    yy, xx = np.mgrid[0:h, 0:w]
    checker = ((xx // 6 + yy // 6) % 2).astype(np.float32)
    img[-h // 5 :, : w // 2] = (0.2 + 0.5 * checker[-h // 5 :, : w // 2])[..., None]
    return np.clip(img, 0.0, 1.0)


@pytest.fixture
def scene() -> np.ndarray:
    return make_scene(0)


@pytest.fixture
def style_images() -> list[np.ndarray]:
    """Two style images with moderate (in-gamut) colour statistics: a dim bluish one and a warm one."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:90, 0:110].astype(np.float32)
    base = 0.5 + 0.2 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None] + rng.normal(0, 0.04, (90, 110, 1))
    night = np.clip(base * np.array([0.35, 0.4, 0.6], np.float32), 0, 1).astype(np.float32)
    warm = np.clip(base * np.array([0.9, 0.65, 0.4], np.float32) + 0.05, 0, 1).astype(np.float32)
    return [night, warm]
