"""Training images from any folder: recursive listing, bad files skipped and counted,
and a seeded, resumable data order.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from selfdesc.errors import DatasetError, ImageError
from selfdesc.io.image import list_images, load_image, resize_image


class ImageFolder(Dataset):
    """RGB images under ``root`` (recursive), each resized to exactly ``size`` ``(W, H)``.

    A file that cannot be decoded is skipped with a warning the first time it is met and
    replaced by the next readable image; :attr:`skipped` lists those files. ``__getitem__``
    returns ``{"image": (3, H, W) float [0, 1], "index": int}``.
    """

    def __init__(self, root: str | Path, size: tuple[int, int] = (640, 480)) -> None:
        self.root = Path(root)
        self.files = list_images(self.root)
        self.size = (int(size[0]), int(size[1]))
        self.skipped: list[Path] = []

    def __len__(self) -> int:
        return len(self.files)

    def _read(self, path: Path) -> torch.Tensor:
        img = load_image(path).image
        h, w = img.shape[:2]
        W, H = self.size
        # cover the target size keeping the aspect ratio, then centre-crop
        f = max(W / w, H / h)
        img, _ = resize_image(img, size=(max(W, round(w * f)), max(H, round(h * f))))
        y0, x0 = (img.shape[0] - H) // 2, (img.shape[1] - W) // 2
        img = img[y0 : y0 + H, x0 : x0 + W]
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        for k in range(len(self.files)):
            i = (index + k) % len(self.files)
            path = self.files[i]
            if path in self.skipped:
                continue
            try:
                return {"image": self._read(path), "index": i}
            except ImageError as exc:
                self.skipped.append(path)
                warnings.warn(f"skipping unreadable training image: {exc}", stacklevel=2)
        raise DatasetError(f"{self.root}: none of the {len(self.files)} images could be read")


@dataclass
class ResumableSampler(Sampler[int]):
    """Endless seeded shuffling that can start at any point of its sequence.

    Epoch ``e`` uses the permutation drawn from ``seed + e``; with ``num_replicas > 1`` each
    rank takes every ``num_replicas``-th index (DistributedSampler style, padded by wrapping).
    ``start`` is how many indices this rank has already consumed: a run resumed at step ``s``
    with batch size ``b`` sets ``start = s * b`` and sees exactly the indices an uninterrupted
    run would have seen (prefetching by the DataLoader does not matter, nothing is mutated).
    """

    size: int
    seed: int = 0
    rank: int = 0
    num_replicas: int = 1
    start: int = 0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise DatasetError("cannot sample from an empty dataset")

    def epoch_order(self, epoch: int) -> list[int]:
        """This rank's indices for ``epoch``."""
        g = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        per_rank = -(-self.size // self.num_replicas)
        order += order[: per_rank * self.num_replicas - len(order)]
        return order[self.rank :: self.num_replicas]

    def __len__(self) -> int:
        return -(-self.size // self.num_replicas)

    def __iter__(self) -> Iterator[int]:
        per_epoch = len(self)
        epoch, position = divmod(self.start, per_epoch)
        while True:  # endless: training is counted in steps, not epochs
            yield from self.epoch_order(epoch)[position:]
            epoch, position = epoch + 1, 0
