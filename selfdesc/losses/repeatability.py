"""R2D2 detector losses on dense repeatability maps: cosine similarity and peakiness (spec §3.3).

Maps are ``(B, 1, H, W)``; pixel ``(x, y)`` of a map is centred on image pixel ``(x, y)``.
Warps use ``grid_sample`` with ``align_corners=True``, so pixel centres ``0 .. W-1`` map to
``-1 .. 1`` exactly (R2D2's flow-to-grid convention).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.geometry.homography import warp_points_torch


def homography_grid(H: torch.Tensor, size1: tuple[int, int], size2: tuple[int, int]) -> torch.Tensor:
    """Sampling grid that pulls image 2 into the frame of image 1.

    Args:
        H: ``(B, 3, 3)`` homographies mapping image-1 pixels to image-2 pixels.
        size1: ``(H1, W1)`` of the output (image-1) frame.
        size2: ``(H2, W2)`` of the map that will be sampled.

    Returns:
        ``(B, H1, W1, 2)`` normalised ``(x, y)`` for ``grid_sample(..., align_corners=True)``.
    """
    h1, w1 = size1
    h2, w2 = size2
    ys = torch.arange(h1, dtype=H.dtype, device=H.device)
    xs = torch.arange(w1, dtype=H.dtype, device=H.device)
    ys, xs = torch.meshgrid(ys, xs, indexing="ij")
    points = torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).expand(H.shape[0], -1, -1)
    warped = warp_points_torch(H, points)
    scale = warped.new_tensor([2.0 / max(w2 - 1, 1), 2.0 / max(h2 - 1, 1)])
    return (warped * scale - 1).reshape(H.shape[0], h1, w1, 2)


def warp_map(map2: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Bilinear resampling of ``map2`` ``(B, C, H2, W2)`` at ``grid`` ``(B, H1, W1, 2)`` (border padding)."""
    return F.grid_sample(map2, grid.to(map2.dtype), mode="bilinear", padding_mode="border", align_corners=True)


def cosim_loss(rep1: torch.Tensor, rep2: torch.Tensor, grid: torch.Tensor, patch_size: int = 16) -> torch.Tensor:
    """R2D2 ``CosimLoss``: ``1 - mean cos(patch of rep1, patch of warped rep2)``.

    ``rep2`` is warped into image 1's frame, both maps are cut into ``N x N`` patches with
    stride ``N / 2``, each flattened patch is L2-normalised and the cosine is averaged over
    all patches of the batch. 0 when the warped maps agree up to a positive scale per patch.

    Args:
        rep1: ``(B, 1, H1, W1)`` repeatability of image 1.
        rep2: ``(B, 1, H2, W2)`` repeatability of image 2.
        grid: ``(B, H1, W1, 2)`` from :func:`homography_grid` (or any flow turned into a grid).
        patch_size: ``N`` (R2D2: 16), even, at most the map size.

    Returns:
        Scalar loss in ``[0, 1]`` for non-negative maps.
    """
    if patch_size < 2 or patch_size % 2 or patch_size > min(rep1.shape[-2:]):
        raise ConfigError(f"cosim_loss: patch_size must be even, >= 2 and fit the map, got {patch_size}")
    warped = warp_map(rep2, grid)

    def patches(x: torch.Tensor) -> torch.Tensor:
        return F.normalize(F.unfold(x, patch_size, stride=patch_size // 2).transpose(1, 2), p=2, dim=2)

    return 1 - (patches(rep1) * patches(warped)).sum(dim=2).mean()


def peaky_loss(rep: torch.Tensor, patch_size: int = 16) -> torch.Tensor:
    """R2D2 ``PeakyLoss`` of one map: ``1 - mean(maxpool(S') - avgpool(S'))``, ``S' = avgpool_3x3(S)``.

    Pools are ``(N+1) x (N+1)``, stride 1, same size output. Averages ignore the padding
    (``count_include_pad=False``; R2D2 counts the zero padding, which makes borders look
    peaky), so a constant map gives exactly 1 and a map of isolated peaks gives less.
    R2D2 averages this loss over the two images of a pair.

    Args:
        rep: ``(B, 1, H, W)`` repeatability map.
        patch_size: ``N`` (R2D2: 16), even.

    Returns:
        Scalar loss.
    """
    if patch_size < 2 or patch_size % 2:
        raise ConfigError(f"peaky_loss: patch_size must be even and >= 2, got {patch_size}")
    smooth = F.avg_pool2d(rep, 3, stride=1, padding=1, count_include_pad=False)
    k, pad = patch_size + 1, patch_size // 2
    local_max = F.max_pool2d(smooth, k, stride=1, padding=pad)
    local_mean = F.avg_pool2d(smooth, k, stride=1, padding=pad, count_include_pad=False)
    return 1 - (local_max - local_mean).mean()
