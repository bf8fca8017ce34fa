"""Keypoint reprojection and dispersity losses on full-resolution heatmaps (ALIKED-style idea, our code).

For a pair of heatmaps ``(A, B)`` of two views related by ``H_AB`` (A pixels -> B pixels,
pixel-centre convention):

1. the ``num_peaks`` strongest NMS peaks of A are picked (positions detached) and refined by a
   soft-argmax in a ``(2r+1)^2`` window (:func:`~selfdesc.features.subpixel.softargmax_refine`),
   which is differentiable in A's heatmap;
2. each refined point is warped into B; where its window lies inside B, B's own soft-argmax in
   the window centred on the (rounded) warped point is computed;
3. the reprojection term is the distance between the warped point and B's soft-argmax; the same
   is done from B to A with ``inv(H_AB)``, and the two directions are averaged.

The dispersity term is the mean expected squared distance of the window pixels from the
soft-argmax (over the peaks of both views): it is 0 for one-pixel peaks and keeps the
heatmap peaky, so the reprojection term cannot be won by flat windows.
"""
from __future__ import annotations

import torch

from selfdesc.features.nms import top_k_peaks
from selfdesc.features.subpixel import softargmax_refine
from selfdesc.geometry.homography import warp_points_torch


def _one_way(
    heat_src: torch.Tensor, heat_dst: torch.Tensor, H: torch.Tensor, num_peaks: int, nms_radius: int, radius: int, temperature: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distances ``(B, N)``, their mask, and the source peaks' dispersion ``(B, N)`` with its mask."""
    Hd, Wd = heat_dst.shape[-2:]
    centers, _, valid = top_k_peaks(heat_src.detach(), num_peaks, nms_radius, border=radius)
    xy, dispersion = softargmax_refine(heat_src, centers, radius, temperature)
    warped = warp_points_torch(H.to(xy.dtype), xy)
    rounded = warped.detach().round()
    inside = (
        (rounded[..., 0] >= radius) & (rounded[..., 0] <= Wd - 1 - radius) & (rounded[..., 1] >= radius) & (rounded[..., 1] <= Hd - 1 - radius)
    )
    inside &= torch.isfinite(warped).all(-1) & valid
    target, _ = softargmax_refine(heat_dst, rounded.where(inside[..., None], 0.0), radius, temperature)
    dist = (warped - target).norm(dim=-1)
    return dist.where(inside, 0.0), inside, dispersion, valid


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp_min(1)


def reprojection_loss(
    heat_a: torch.Tensor,
    heat_b: torch.Tensor,
    H_AB: torch.Tensor,
    num_peaks: int = 256,
    nms_radius: int = 2,
    radius: int = 2,
    temperature: float = 0.1,
) -> dict[str, torch.Tensor]:
    """Symmetric keypoint reprojection distance and dispersity of a batch of heatmap pairs.

    Args:
        heat_a: ``(B, 1, H, W)`` heatmaps of view A (values in [0, 1]).
        heat_b: ``(B, 1, H', W')`` heatmaps of view B.
        H_AB: ``(B, 3, 3)`` homographies, A pixels to B pixels.
        num_peaks: peaks per heatmap.
        nms_radius: NMS half window of the peaks.
        radius: soft-argmax window half size ``r`` (pixels).
        temperature: soft-argmax temperature.

    Returns:
        ``reprojection`` (mean distance in pixels over points that land inside the other view),
        ``dispersity`` (mean expected squared distance, pixels^2, over all valid peaks) and
        ``num_points`` (points in the reprojection term), all scalars.
    """
    H = H_AB.float()
    d_ab, m_ab, disp_a, v_a = _one_way(heat_a, heat_b, H, num_peaks, nms_radius, radius, temperature)
    d_ba, m_ba, disp_b, v_b = _one_way(heat_b, heat_a, torch.linalg.inv(H), num_peaks, nms_radius, radius, temperature)
    return {
        "reprojection": 0.5 * (_masked_mean(d_ab, m_ab) + _masked_mean(d_ba, m_ba)),
        "dispersity": 0.5 * (_masked_mean(disp_a, v_a) + _masked_mean(disp_b, v_b)),
        "num_points": (m_ab.sum() + m_ba.sum()).float().detach(),
    }


__all__ = ["reprojection_loss"]
