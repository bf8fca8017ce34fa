"""One batch of predictions laid out as the bytes of features.h5, copied to the host at once.

:func:`pack_batch` builds, on the extractor's device, two flat buffers for a whole batch:

* ``meta`` float32: the keypoints of every image ``(N_i, 2)`` in original-image pixels (those of
  a resized image mapped on the device in float64, as :func:`~selfdesc.io.image.rescale_keypoints`
  does: pixel-centre convention, ``(p + 0.5) * s - 0.5``), then the scores of every image ``(N_i,)``;
* ``desc`` float32 (float16 with ``fp16``): each image's descriptors transposed to the file's
  ``(D, N_i)`` layout, one image after the other,

and starts one non-blocking copy of each into pinned host memory (CUDA), recording an event.
Nothing here waits for the device (no host synchronisation). The caller moves on at once; the
writer calls :meth:`PackedBatch.arrays`, which waits for the event and returns each image's
datasets: numpy views of the buffers (no copy, no per-image arithmetic in the writer thread).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch


@dataclass
class PackedBatch:
    """Host buffers of one batch (see the module docstring); ``counts``: keypoints per image."""

    meta: torch.Tensor
    desc: torch.Tensor
    counts: list[int]
    dim: int
    sizes: list[tuple[int, int]]
    event: torch.cuda.Event | None = None

    def wait(self) -> None:
        """Block until the device-to-host copies are done."""
        if self.event is not None:
            self.event.synchronize()
            self.event = None

    def arrays(self, i: int) -> dict[str, np.ndarray]:
        """Image ``i``'s datasets: ``keypoints`` (N, 2) float32, ``scores`` (N,) float32,
        ``descriptors`` (D, N) float32 / float16, ``image_size`` (2,) int32 ``(W, H)``."""
        self.wait()
        start, n, total = sum(self.counts[:i]), self.counts[i], sum(self.counts)
        meta, desc = self.meta.numpy(), self.desc.numpy()
        return {
            "keypoints": meta[2 * start : 2 * (start + n)].reshape(n, 2),
            "scores": meta[2 * total + start : 2 * total + start + n],
            "descriptors": desc[self.dim * start : self.dim * (start + n)].reshape(self.dim, n),
            "image_size": np.asarray(self.sizes[i], np.int32),
        }


def _to_host(flat: torch.Tensor) -> torch.Tensor:
    if flat.device.type != "cuda":
        return flat.contiguous()
    host = torch.empty(flat.shape, dtype=flat.dtype, pin_memory=True)
    return host.copy_(flat, non_blocking=True)


def pack_batch(
    preds: Sequence[dict[str, torch.Tensor]],
    scales: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[int, int]],
    fp16: bool = False,
) -> PackedBatch:
    """Device predictions of a batch (``keypoints`` (N, 2) in pixels of the network input,
    ``scores`` (N,), ``descriptors`` (N, D)) -> a :class:`PackedBatch` whose copy to the host
    is under way; ``scales`` ``(sx, sy)`` map keypoints to the original images of ``sizes`` ``(W, H)``."""
    counts = [int(p["keypoints"].shape[0]) for p in preds]
    device = preds[0]["keypoints"].device
    kpts = torch.cat([p["keypoints"].detach().reshape(-1, 2) for p in preds])
    if any(tuple(sc) != (1.0, 1.0) for sc in scales):  # to original pixels, in float64 as rescale_keypoints
        per_image = torch.tensor([tuple(sc) for sc in scales], dtype=torch.float64).to(device, non_blocking=True)
        repeats = torch.tensor(counts).to(device, non_blocking=True)
        per_point = torch.repeat_interleave(per_image, repeats, dim=0, output_size=sum(counts))  # no host synchronisation
        mapped = (kpts.float() + 0.5).double() * per_point - 0.5  # rescale_keypoints' steps and precisions
        kpts = torch.where((per_point == 1.0).all(dim=1, keepdim=True), kpts.double(), mapped)  # unscaled images: as they are
    scores = torch.cat([p["scores"].detach().reshape(-1) for p in preds])
    meta = torch.cat([kpts.float().reshape(-1), scores.float()])
    dim = int(preds[0]["descriptors"].shape[-1])
    desc = torch.empty(dim * sum(counts), dtype=torch.float16 if fp16 else torch.float32, device=device)
    start = 0
    for p, n in zip(preds, counts):  # one transposing copy per image, straight into the buffer
        desc[dim * start : dim * (start + n)].view(dim, n).copy_(p["descriptors"].detach().t())
        start += n
    packed = PackedBatch(_to_host(meta), _to_host(desc), counts, dim, [tuple(s) for s in sizes])
    if device.type == "cuda":
        packed.event = torch.cuda.Event()
        packed.event.record()
    return packed


__all__ = ["PackedBatch", "pack_batch"]
