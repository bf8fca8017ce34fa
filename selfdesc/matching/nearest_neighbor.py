"""Mutual nearest-neighbour matching on descriptor similarity (torch, CPU or GPU).

Descriptors are L2-normalised, so similarity is the dot product ``s = <d0, d1>`` and the
matching is the D2-Net protocol's MNN when no ratio test or threshold is given.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x: np.ndarray | torch.Tensor, device: str | torch.device | None) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if device is not None:
        t = t.to(device)
    return t.float()


def match_mnn_batched(
    desc0: torch.Tensor,
    desc1: torch.Tensor,
    mask0: torch.Tensor | None = None,
    mask1: torch.Tensor | None = None,
    ratio: float | None = None,
    min_similarity: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mutual nearest neighbours for a batch of padded descriptor sets.

    Args:
        desc0: ``(B, N, D)`` L2-normalised descriptors of image 0.
        desc1: ``(B, M, D)`` of image 1.
        mask0, mask1: optional ``(B, N)`` / ``(B, M)`` bool masks of valid (non-padding) rows.
        ratio: optional Lowe ratio test on descriptor *distances* (both directions), e.g. 0.8.
        min_similarity: optional lower bound on the similarity of a match.

    Returns:
        ``matches0`` ``(B, N)`` long: index into image 1, ``-1`` when unmatched, and
        ``scores0`` ``(B, N)``: the similarity of each match (0 when unmatched).
    """
    B, N, _ = desc0.shape
    M = desc1.shape[1]
    sim = desc0 @ desc1.transpose(1, 2)
    neg = torch.finfo(sim.dtype).min
    if mask0 is not None:
        sim = sim.masked_fill(~mask0[:, :, None], neg)
    if mask1 is not None:
        sim = sim.masked_fill(~mask1[:, None, :], neg)
    if M == 0 or N == 0:
        return torch.full((B, N), -1, dtype=torch.long, device=desc0.device), sim.new_zeros((B, N))
    k = 2 if (ratio is not None and M >= 2) else 1
    top01, nn01 = sim.topk(k, dim=2)
    nn10 = sim.argmax(dim=1)  # (B, M)
    idx0 = torch.arange(N, device=sim.device)[None].expand(B, N)
    valid = nn10.gather(1, nn01[..., 0]) == idx0
    best = top01[..., 0]
    if mask0 is not None:
        valid &= mask0
    if mask1 is not None:
        valid &= mask1.gather(1, nn01[..., 0])
    if ratio is not None and k == 2:
        d1 = torch.sqrt((2 - 2 * best).clamp_min(0))
        d2 = torch.sqrt((2 - 2 * top01[..., 1]).clamp_min(0))
        valid &= d1 <= ratio * d2
        # symmetric: the ratio test must also hold from image 1's side
        top10 = sim.topk(min(2, N), dim=1).values  # (B, 2, M)
        if N >= 2:
            e1 = torch.sqrt((2 - 2 * top10[:, 0]).clamp_min(0))
            e2 = torch.sqrt((2 - 2 * top10[:, 1]).clamp_min(0))
            valid &= (e1 <= ratio * e2).gather(1, nn01[..., 0])
    if min_similarity is not None:
        valid &= best >= min_similarity
    matches0 = torch.where(valid, nn01[..., 0], torch.full_like(nn01[..., 0], -1))
    scores0 = torch.where(valid, best, torch.zeros_like(best))
    return matches0, scores0


def match_mnn(
    desc0: np.ndarray | torch.Tensor,
    desc1: np.ndarray | torch.Tensor,
    ratio: float | None = None,
    min_similarity: float | None = None,
    device: str | torch.device | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mutual nearest-neighbour matches between two descriptor sets.

    Args:
        desc0: ``N x D`` L2-normalised descriptors; desc1: ``M x D``.
        ratio: optional ratio test (see :func:`match_mnn_batched`).
        min_similarity: optional similarity threshold.
        device: where to compute (default: where ``desc0`` lives; CPU for numpy).

    Returns:
        ``K x 2`` int64 array of index pairs ``(i0, i1)`` sorted by ``i0``, and the ``K``
        similarities.
    """
    d0 = _as_tensor(desc0, device)
    d1 = _as_tensor(desc1, d0.device)
    if d0.ndim != 2 or d1.ndim != 2 or (len(d0) and len(d1) and d0.shape[1] != d1.shape[1]):
        raise ValueError(f"descriptors must be N x D and M x D with the same D, got {tuple(d0.shape)} and {tuple(d1.shape)}")
    if len(d0) == 0 or len(d1) == 0:
        return np.zeros((0, 2), np.int64), np.zeros((0,), np.float32)
    with torch.no_grad():
        m0, s0 = match_mnn_batched(d0[None], d1[None], ratio=ratio, min_similarity=min_similarity)
    m0, s0 = m0[0].cpu().numpy(), s0[0].cpu().numpy()
    i0 = np.nonzero(m0 >= 0)[0]
    return np.stack([i0, m0[i0]], axis=1).astype(np.int64), s0[i0].astype(np.float32)
