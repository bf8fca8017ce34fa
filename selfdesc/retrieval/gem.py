"""Generalized-mean (GeM) pooling of a dense feature map into one global descriptor.

This is the "selfgd" global descriptor: the descriptor network's own dense map, GeM-pooled
(Radenovic et al. 2018, ``p = 3``) and L2-normalised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def gem_pool(feature_map: torch.Tensor, p: float | torch.Tensor = 3.0, eps: float = 1e-6) -> torch.Tensor:
    """GeM-pool ``(B, D, H, W)`` maps into ``(B, D)`` L2-normalised descriptors.

    Each channel becomes ``(mean_{h,w} max(x, eps) ** p) ** (1 / p)``: ``p = 1`` is average
    pooling and ``p -> inf`` tends to max pooling. As in the original GeM (made for post-ReLU
    maps) values below ``eps`` are clamped to ``eps``, so negative entries of signed maps
    (e.g. L2-normalised dense descriptors) contribute nothing. ``p`` may be a (learnable)
    scalar tensor; the result is differentiable in ``feature_map`` and ``p``.
    """
    if feature_map.ndim != 4:
        raise ValueError(f"gem_pool expects a (B, D, H, W) map, got shape {tuple(feature_map.shape)}")
    pooled = feature_map.clamp(min=eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)
    return F.normalize(pooled, dim=1)


__all__ = ["gem_pool"]
