"""The "selfgd" memory: recent training crops and the descriptor network's own global descriptors.

HNDesc's coarse-to-fine mining (spec §2.8.3) retrieves, for every training image, a visually
similar *other* image and mines negatives in a crop of it. With ``gd`` the retrieval is an
offline global index (the loader returns the neighbour images); with ``selfgd`` the global
descriptor is the descriptor network's own dense map, GeM-pooled (:func:`gem_pool`), so it
changes while training. The neighbour's pixels must then be at hand in the training process
(the loader workers cannot see the network) and must be checkpointed for an exact resume, so
this module keeps them: a first-in-first-out memory of the last ``size`` (un-augmented) A crops
with their image ids and global descriptors, all registered buffers (saved with the method's
state dict; DDP keeps them in sync from rank 0). Neighbours are drawn from this memory, i.e.
the retrieval runs over the most recent ``size`` training images, not the whole set.

Descriptors are written when a crop enters (from the current batch's map) and recomputed for
the whole memory with the current network by :meth:`CropMemory.refresh` (every
``refresh_every`` steps in :class:`~selfdesc.methods.hndesc.HNDesc`).
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class CropMemory(nn.Module):
    """FIFO memory of ``size`` crops ``(3, S, S)`` (uint8) with ``dim``-D global descriptors.

    Buffers: ``crops`` ``(size, 3, S, S)`` uint8, ``desc`` ``(size, dim)`` float32, ``ids``
    ``(size,)`` int64 source image of each slot (-1: empty), ``ptr`` next slot to overwrite,
    ``pushes`` number of :meth:`push` calls so far.
    """

    def __init__(self, size: int, crop_size: int, dim: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"CropMemory: size must be >= 1, got {size}")
        self.register_buffer("crops", torch.zeros(size, 3, crop_size, crop_size, dtype=torch.uint8))
        self.register_buffer("desc", torch.zeros(size, dim))
        self.register_buffer("ids", torch.full((size,), -1, dtype=torch.int64))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.int64))
        self.register_buffer("pushes", torch.zeros((), dtype=torch.int64))

    @property
    def filled(self) -> torch.Tensor:
        """``(size,)`` bool, slots holding a crop."""
        return self.ids >= 0

    @torch.no_grad()
    def nearest(self, desc: torch.Tensor, image_ids: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` most similar stored crops of other images for each query.

        Args:
            desc: ``(B, dim)`` L2-normalised global descriptors of the queries.
            image_ids: ``(B,)`` their source images (a slot of the same image is never returned).
            k: neighbours per query.

        Returns:
            ``slots`` ``(B, k)`` int64 and ``ok`` ``(B, k)`` bool (False where fewer exist).
        """
        sims = desc.float() @ self.desc.T
        allowed = self.filled[None] & (self.ids[None] != image_ids[:, None].to(self.ids))
        sims = sims.masked_fill(~allowed, float("-inf"))
        top = sims.topk(min(k, sims.shape[1]), dim=1)
        return top.indices, torch.isfinite(top.values)

    def images(self, slots: torch.Tensor) -> torch.Tensor:
        """Stored crops ``(len(slots), 3, S, S)`` as float in ``[0, 1]``."""
        return self.crops[slots].float() / 255.0

    @torch.no_grad()
    def push(self, crops: torch.Tensor, desc: torch.Tensor, image_ids: torch.Tensor) -> None:
        """Store ``crops`` ``(B, 3, S, S)`` float in ``[0, 1]`` with descriptors ``(B, dim)`` and ids ``(B,)``."""
        size, n = len(self.ids), min(len(crops), len(self.ids))
        slots = (self.ptr + torch.arange(n, device=self.ptr.device)) % size
        self.crops[slots] = (crops[-n:].float().clamp(0, 1) * 255).round().to(torch.uint8)
        self.desc[slots] = desc[-n:].float()
        self.ids[slots] = image_ids[-n:].to(self.ids)
        self.ptr.copy_((self.ptr + n) % size)
        self.pushes += 1

    @torch.no_grad()
    def refresh(self, describe: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 32) -> None:
        """Recompute every stored descriptor as ``describe(crops (b, 3, S, S) float) -> (b, dim)``."""
        slots = self.filled.nonzero().squeeze(1)
        for chunk in slots.split(batch_size):
            self.desc[chunk] = describe(self.images(chunk)).float()
