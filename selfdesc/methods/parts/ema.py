"""Exponential moving average (EMA) target networks, as in BYOL / TPR (spec §6.3).

The target copy of a module is frozen (``requires_grad=False``) and follows the online module
with ``theta_t <- tau * theta_t + (1 - tau) * theta_o`` after every optimiser step; its buffers
(BatchNorm statistics, running maxima) are copied. ``tau`` follows BYOL's cosine schedule
from ``base`` up to 1 (:func:`ema_decay`).
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn


def make_target(online: nn.Module) -> nn.Module:
    """A frozen deep copy of ``online`` (no parameter requires a gradient)."""
    target = copy.deepcopy(online)
    for p in target.parameters():
        p.requires_grad_(False)
    return target


@torch.no_grad()
def ema_update_(target: nn.Module, online: nn.Module, tau: float) -> None:
    """In place: ``theta_t <- tau * theta_t + (1 - tau) * theta_o`` for every parameter; buffers copied.

    Both modules must have the same structure (``target`` made by :func:`make_target`).
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"ema_update_: tau must be in [0, 1], got {tau}")
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.mul_(tau).add_(o.detach().to(t.dtype), alpha=1.0 - tau)
    for t, o in zip(target.buffers(), online.buffers(), strict=True):
        t.copy_(o)


def ema_decay(step: int, total: int, base: float) -> float:
    """BYOL's schedule ``tau = 1 - (1 - base) * (cos(pi * step / total) + 1) / 2``: ``base`` at 0, 1 at ``total``.

    Steps past ``total`` stay at 1; ``total <= 0`` gives ``base`` throughout.
    """
    if total <= 0:
        return base
    progress = min(max(step / total, 0.0), 1.0)
    return 1.0 - (1.0 - base) * (math.cos(math.pi * progress) + 1.0) / 2.0


__all__ = ["ema_decay", "ema_update_", "make_target"]
