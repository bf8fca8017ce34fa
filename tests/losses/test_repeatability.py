"""R2D2 cosim / peaky losses and the homography warp they use."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.losses import cosim_loss, homography_grid, peaky_loss, warp_map


def translation(dx: float, dy: float) -> torch.Tensor:
    return torch.tensor([[[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]]])


def test_identity_grid_reproduces_the_map() -> None:
    rep = torch.rand(1, 1, 12, 10, generator=torch.Generator().manual_seed(0))
    grid = homography_grid(torch.eye(3)[None], (12, 10), (12, 10))
    assert torch.allclose(warp_map(rep, grid), rep, atol=1e-6)


def test_translation_warp_is_pixel_exact() -> None:
    rep2 = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    # image-1 pixel (x, y) is image-2 pixel (x + 3, y - 2)
    warped = warp_map(rep2, homography_grid(translation(3, -2), (16, 16), (16, 16)))
    assert torch.allclose(warped[0, 0, 2:, :13], rep2[0, 0, :14, 3:], atol=1e-6)
    # half-pixel shift = mean of the two neighbours
    half = warp_map(rep2, homography_grid(translation(0.5, 0), (16, 16), (16, 16)))
    assert torch.allclose(half[0, 0, :, :15], (rep2[0, 0, :, :15] + rep2[0, 0, :, 1:]) / 2, atol=1e-6)


def reference_cosim(a: np.ndarray, b: np.ndarray, n: int) -> float:
    cos = []
    for y in range(0, a.shape[0] - n + 1, n // 2):
        for x in range(0, a.shape[1] - n + 1, n // 2):
            p, q = a[y : y + n, x : x + n].ravel(), b[y : y + n, x : x + n].ravel()
            cos.append(p @ q / (np.linalg.norm(p) * np.linalg.norm(q)))
    return 1 - float(np.mean(cos))


def test_cosim_identical_maps_zero_and_known_value() -> None:
    g = torch.Generator().manual_seed(2)
    rep1, rep2 = torch.rand(1, 1, 16, 16, generator=g), torch.rand(1, 1, 16, 16, generator=g)
    identity = homography_grid(torch.eye(3)[None], (16, 16), (16, 16))
    assert cosim_loss(rep1, rep1, identity, 4).item() == pytest.approx(0.0, abs=1e-6)
    got = cosim_loss(rep1, rep2, identity, 4).item()
    assert got == pytest.approx(reference_cosim(rep1[0, 0].numpy(), rep2[0, 0].numpy(), 4), abs=1e-6)
    assert got > 0.05
    with pytest.raises(ConfigError, match="patch_size"):
        cosim_loss(rep1, rep2, identity, 5)


def reference_peaky(s: np.ndarray, n: int) -> float:
    """Loops over pixels; windows clipped to the image (averages over the pixels inside)."""
    h, w = s.shape

    def window(a: np.ndarray, y: int, x: int, r: int) -> np.ndarray:
        return a[max(0, y - r) : min(h, y + r + 1), max(0, x - r) : min(w, x + r + 1)]

    smooth = np.array([[window(s, y, x, 1).mean() for x in range(w)] for y in range(h)])
    peak = [window(smooth, y, x, n // 2).max() - window(smooth, y, x, n // 2).mean() for y in range(h) for x in range(w)]
    return 1 - float(np.mean(peak))


def test_peaky_flat_map_is_one_and_known_value() -> None:
    assert peaky_loss(torch.full((2, 1, 12, 12), 0.3), 4).item() == pytest.approx(1.0, abs=1e-6)
    rep = torch.rand(1, 1, 10, 11, generator=torch.Generator().manual_seed(3))
    assert peaky_loss(rep, 4).item() == pytest.approx(reference_peaky(rep[0, 0].numpy().astype(np.float64), 4), abs=1e-6)
    peaks = torch.zeros(1, 1, 12, 12)
    peaks[0, 0, ::4, ::4] = 1.0
    assert peaky_loss(peaks, 4).item() < 0.95  # isolated peaks are rewarded
