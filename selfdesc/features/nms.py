"""Non-maximum suppression for keypoints.

Two flavours:

* :func:`radius_nms` — greedy suppression of a *sparse* keypoint set: visit keypoints by
  decreasing score and drop every one closer than ``radius`` pixels to a keypoint already kept.
* :func:`dense_nms_mask` — local maxima of a *dense* score map with a max-pool window
  (ties are all kept, as in R2D2's ``NonMaxSuppression``).
* :func:`top_k_peaks` — the ``k`` strongest of those local maxima, batched, as fixed-size tensors.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
import torch.nn.functional as F

from selfdesc.features.base import select_keypoints


def radius_nms(keypoints: torch.Tensor, scores: torch.Tensor, radius: float) -> torch.Tensor:
    """Greedy radius NMS of a sparse keypoint set.

    Args:
        keypoints: ``(N, 2)`` ``(x, y)`` positions (any consistent pixel convention).
        scores: ``(N,)``; higher is better. Ties are visited in index order.
        radius: keypoints strictly closer than this to a stronger kept keypoint are removed;
            ``<= 0`` keeps everything.

    Returns:
        ``(K,)`` long indices of the kept keypoints, in decreasing score order.
    """
    n = keypoints.shape[0]
    order = torch.argsort(scores.detach().cpu(), descending=True, stable=True)
    if radius <= 0 or n <= 1:
        return order.to(keypoints.device)
    pts = keypoints.detach().cpu().double().numpy()[order.numpy()]
    r2 = float(radius) ** 2
    # hash grid with cells of side `radius`: any point within `radius` lies in the 3x3 neighbouring cells
    cells = np.floor(pts / radius).astype(np.int64)
    grid: dict[tuple[int, int], list[int]] = defaultdict(list)
    keep: list[int] = []
    for i in range(n):
        cx, cy = int(cells[i, 0]), int(cells[i, 1])
        x, y = pts[i]
        near = (
            (pts[j, 0] - x) ** 2 + (pts[j, 1] - y) ** 2 < r2
            for gx in (cx - 1, cx, cx + 1)
            for gy in (cy - 1, cy, cy + 1)
            for j in grid.get((gx, gy), ())
        )
        if not any(near):
            keep.append(i)
            grid[(cx, cy)].append(i)
    return order[torch.as_tensor(keep, dtype=torch.long)].to(keypoints.device)


def apply_radius_nms(pred: dict[str, torch.Tensor], radius: float) -> dict[str, torch.Tensor]:
    """:func:`radius_nms` on a ``keypoints`` / ``scores`` / ... dict (no-op when ``radius <= 0``)."""
    if radius <= 0:
        return pred
    return select_keypoints(pred, radius_nms(pred["keypoints"], pred["scores"], radius))


def dense_nms_mask(scores: torch.Tensor, radius: int = 1) -> torch.Tensor:
    """Local maxima of a dense score map.

    Args:
        scores: ``(B, 1, H, W)`` score map.
        radius: half window; the window is ``(2 * radius + 1)^2`` (R2D2: ``radius=1``, 3x3).

    Returns:
        ``(B, 1, H, W)`` bool mask, true where the score equals the maximum of its window
        (the window is clipped at the border; tied maxima are all kept).
    """
    k = 2 * int(radius) + 1
    return scores == F.max_pool2d(scores, kernel_size=k, stride=1, padding=int(radius))


def top_k_peaks(
    scores: torch.Tensor, num: int, radius: int = 1, border: int = 0, threshold: float = float("-inf")
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``num`` strongest local maxima (:func:`dense_nms_mask`) of each score map.

    Args:
        scores: ``(B, 1, H, W)`` score maps.
        num: peaks per map.
        radius: NMS half window.
        border: pixels next to the edges that are never peaks.
        threshold: peaks must score at least this.

    Returns:
        ``xy`` ``(B, num, 2)`` int64 ``(x, y)`` pixel centres (0 where missing), their scores
        ``(B, num)`` and validity ``(B, num)`` bool; sorted by decreasing score.
    """
    B, _, H, W = scores.shape
    s = scores.float()
    keep = dense_nms_mask(s, radius) & (s >= threshold)
    keep[..., : min(border, H), :] = False
    keep[..., max(H - border, 0) :, :] = False
    keep[..., : min(border, W)] = False
    keep[..., max(W - border, 0) :] = False
    top = s.masked_fill(~keep, float("-inf")).flatten(1).topk(min(num, H * W), dim=1)
    valid = torch.isfinite(top.values)
    xy = torch.stack([top.indices % W, top.indices // W], dim=-1).where(valid[..., None], 0)
    values = top.values.where(valid, 0.0)
    if xy.shape[1] < num:
        missing = num - xy.shape[1]
        xy = torch.cat([xy, xy.new_zeros(B, missing, 2)], dim=1)
        values = torch.cat([values, values.new_zeros(B, missing)], dim=1)
        valid = torch.cat([valid, valid.new_zeros(B, missing)], dim=1)
    return xy, values, valid


__all__ = ["radius_nms", "apply_radius_nms", "dense_nms_mask", "top_k_peaks"]
