"""Decoded images cross from the loader's workers to the main process a chunk at a time.

A tensor returned by a DataLoader worker reaches the main process as a shared-memory file whose
descriptor the main thread fetches from the worker over a socket (a connection, an
authentication handshake and a message per tensor). Per image that cost ~3 ms of the main
thread on a busy host, more than the rest of the pipeline's work on an image. So a worker packs
the images of its chunk (:func:`pack_chunk`, the loader's ``collate_fn``): images of one shape
stacked into one tensor, JPEG bytes joined into one, so a chunk crosses as one tensor per shape
(usually one) plus one for the bytes; :func:`unpack_chunk` gives the main process its items back,
each ``"image"`` / ``"jpeg"`` a view of those tensors (pinned once, by the loader, per chunk).
"""
from __future__ import annotations

from typing import Any

import torch


def pack_chunk(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker side. ``items`` (dicts, some with ``"image"`` ``(C, H, W)`` of shape ``"shape"``,
    some with ``"jpeg"`` 1-D uint8) -> ``{"items", "images": {shape: (n, C, H, W)}, "jpeg": uint8 or None}``,
    each item's tensor replaced by its place in those."""
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    jpegs: list[torch.Tensor] = []
    start = 0
    packed = []
    for item in items:
        item = dict(item)
        if "image" in item:
            group = groups.setdefault(tuple(item["shape"]), [])
            group.append(item["image"])
            item["image"] = len(group) - 1
        if "jpeg" in item:
            n = int(item["jpeg"].numel())
            jpegs.append(item["jpeg"])
            item["jpeg"] = (start, start + n)
            start += n
        packed.append(item)
    images = {shape: torch.stack(group) for shape, group in groups.items()}
    return {"items": packed, "images": images, "jpeg": torch.cat(jpegs) if jpegs else None}


def unpack_chunk(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """Main side: the items of a :func:`pack_chunk` result, ``"image"`` / ``"jpeg"`` views of its tensors."""
    items = []
    for item in chunk["items"]:
        if "image" in item:
            item["image"] = chunk["images"][tuple(item["shape"])][item["image"]]
        if "jpeg" in item:
            a, b = item["jpeg"]
            item["jpeg"] = chunk["jpeg"][a:b]
        items.append(item)
    return items


__all__ = ["pack_chunk", "unpack_chunk"]
