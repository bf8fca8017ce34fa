"""Decoded images cross from the loader's workers to the main process a chunk at a time.

A tensor returned by a DataLoader worker reaches the main process as a shared-memory file whose
descriptor the main thread fetches from the worker over a socket: a connection, an
authentication handshake and a reply from a thread of the worker, which first needs the
worker's GIL. Per image that cost ~3 ms of the main thread's time on this 2-core machine
(cProfile), about what the whole pipeline is allowed per image on the H200. So a worker packs
its chunk (:func:`pack_chunk`, the loader's ``collate_fn``): images of one shape stacked into one
tensor (one descriptor per shape, usually one per chunk), JPEG file bytes joined into one
``bytes`` object (sent through the loader's pipe, no descriptor at all). :func:`unpack_chunk`
gives the main process its items back, each ``"image"`` a view of its stack (pinned by the
loader once per chunk) and each ``"jpeg"`` a uint8 view of the joined bytes.
"""
from __future__ import annotations

from typing import Any

import torch


def pack_chunk(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Worker side. ``items`` (dicts, some with ``"image"`` ``(C, H, W)`` of shape ``"shape"``,
    some with ``"jpeg"`` file bytes) -> ``{"items", "images": {shape: (n, C, H, W)}, "jpeg": bytes}``,
    each item's image or bytes replaced by its place in those."""
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    jpegs: list[bytes] = []
    start = 0
    packed = []
    for item in items:
        item = dict(item)
        if "image" in item:
            group = groups.setdefault(tuple(item["shape"]), [])
            group.append(item["image"])
            item["image"] = len(group) - 1
        if "jpeg" in item:
            jpegs.append(item["jpeg"])
            item["jpeg"] = (start, start + len(jpegs[-1]))
            start += len(jpegs[-1])
        packed.append(item)
    images = {shape: torch.stack(group) for shape, group in groups.items()}
    return {"items": packed, "images": images, "jpeg": b"".join(jpegs)}


def unpack_chunk(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    """Main side: the items of a :func:`pack_chunk` result, ``"image"`` a view of its stack,
    ``"jpeg"`` a 1-D uint8 tensor (a view of the joined bytes)."""
    joined = torch.frombuffer(bytearray(chunk["jpeg"]), dtype=torch.uint8) if chunk["jpeg"] else None
    items = []
    for item in chunk["items"]:
        if "image" in item:
            item["image"] = chunk["images"][tuple(item["shape"])][item["image"]]
        if "jpeg" in item:
            a, b = item["jpeg"]
            item["jpeg"] = joined[a:b]
        items.append(item)
    return items


__all__ = ["pack_chunk", "unpack_chunk"]
