"""Ground-truth assignments of two keypoint sets related by a homography, and the matcher's loss.

Labels per point: the index of its match in the other set, ``UNMATCHED`` (-1) or ``IGNORE`` (-2).
A pair ``(i, j)`` matches when each is the other's nearest under the symmetric reprojection
distance ``max(|H p_i - q_j|, |p_i - H^-1 q_j|)`` (pixels) and that distance is below
``positive_px``; a point without a match is unmatched when its nearest distance exceeds
``negative_px`` (or it has no candidate at all), otherwise it is ambiguous and ignored.
"""
from __future__ import annotations

import torch

UNMATCHED = -1
IGNORE = -2


def _project(H: torch.Tensor, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, 3, 3)`` homographies applied to ``(B, N, 2)`` points (float64): points and in-front flags."""
    pts = points.to(torch.float64)
    hom = pts @ H[:, :2, :2].transpose(1, 2).to(torch.float64) + H[:, None, :2, 2].to(torch.float64)
    w = pts @ H[:, 2, :2, None].to(torch.float64) + H[:, None, 2:3, 2].to(torch.float64)
    front = w[..., 0] > 1e-12
    return hom / torch.where(front[..., None], w, torch.ones_like(w)), front


def homography_assignment(
    kp0: torch.Tensor,
    kp1: torch.Tensor,
    H: torch.Tensor,
    mask0: torch.Tensor | None = None,
    mask1: torch.Tensor | None = None,
    positive_px: float = 3.0,
    negative_px: float = 5.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ground-truth labels of two keypoint sets (see the module docstring).

    Args:
        kp0: ``(B, N, 2)`` ``(x, y)`` pixels of image 0; kp1: ``(B, M, 2)`` of image 1.
        H: ``(B, 3, 3)`` maps image-0 pixels to image-1 pixels (pixel-centre convention).
        mask0, mask1: ``(B, N)`` / ``(B, M)`` bool, False for padding (labelled ``IGNORE``).
        positive_px, negative_px: distance thresholds (``positive_px <= negative_px``).

    Returns:
        ``gt0`` ``(B, N)`` and ``gt1`` ``(B, M)`` long labels; ``gt0[b, i] = j`` iff ``gt1[b, j] = i``.
    """
    B, N, M = kp0.shape[0], kp0.shape[1], kp1.shape[1]
    device = kp0.device
    mask0 = torch.ones(B, N, dtype=torch.bool, device=device) if mask0 is None else mask0.bool()
    mask1 = torch.ones(B, M, dtype=torch.bool, device=device) if mask1 is None else mask1.bool()
    gt0 = torch.full((B, N), UNMATCHED, dtype=torch.long, device=device)
    gt1 = torch.full((B, M), UNMATCHED, dtype=torch.long, device=device)
    if N and M:
        H = H.to(torch.float64)
        p01, front0 = _project(H, kp0)
        p10, front1 = _project(torch.linalg.inv(H), kp1)
        d01 = torch.cdist(p01, kp1.to(torch.float64))
        d10 = torch.cdist(kp0.to(torch.float64), p10)
        dist = torch.maximum(d01, d10)
        ok = mask0[:, :, None] & mask1[:, None, :] & front0[:, :, None] & front1[:, None, :]
        dist = dist.masked_fill(~ok, float("inf"))
        best0, nn0 = dist.min(2)
        best1, nn1 = dist.min(1)
        mutual0 = nn1.gather(1, nn0) == torch.arange(N, device=device)[None]
        match0 = mutual0 & (best0 < positive_px)
        match1 = (nn0.gather(1, nn1) == torch.arange(M, device=device)[None]) & (best1 < positive_px)
        gt0 = torch.where(match0, nn0, torch.where(best0 > negative_px, UNMATCHED, IGNORE))
        gt1 = torch.where(match1, nn1, torch.where(best1 > negative_px, UNMATCHED, IGNORE))
    gt0 = gt0.masked_fill(~mask0, IGNORE)
    gt1 = gt1.masked_fill(~mask1, IGNORE)
    return gt0, gt1


def assignment_nll(scores: torch.Tensor, gt0: torch.Tensor, gt1: torch.Tensor, balance: float = 0.5) -> torch.Tensor:
    """Negative log-likelihood of a ground-truth partial assignment, per pair.

    Args:
        scores: ``(B, N+1, M+1)`` log-probabilities (last row / column: unmatched).
        gt0, gt1: labels from :func:`homography_assignment`.
        balance: weight of the matched term; ``1 - balance`` weighs the unmatched terms.

    Returns:
        ``(B,)`` ``balance * mean(-log P(matches)) + (1 - balance) * mean(-log P(unmatched))``
        (an empty term counts 0).
    """
    N, M = gt0.shape[1], gt1.shape[1]
    pos = gt0 >= 0
    inner = scores[:, :N, :M]
    pos_ll = inner.gather(2, gt0.clamp_min(0)[..., None])[..., 0].masked_fill(~pos, 0.0)
    neg0, neg1 = gt0 == UNMATCHED, gt1 == UNMATCHED
    neg_ll = scores[:, :N, M].masked_fill(~neg0, 0.0).sum(1) + scores[:, N, :M].masked_fill(~neg1, 0.0).sum(1)
    num_pos = pos.sum(1).clamp_min(1)
    num_neg = (neg0.sum(1) + neg1.sum(1)).clamp_min(1)
    return -balance * pos_ll.sum(1) / num_pos - (1 - balance) * neg_ll / num_neg
