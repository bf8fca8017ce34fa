"""Training images from any folder: recursive listing, bad files skipped and counted, a seeded,
resumable data order, and the per-image extras a method may ask for (computed in the loader
workers): SIFT keypoints, a stylized source for crop B, and retrieved neighbour images.

Per-sample randomness: :class:`ResumableSampler` yields :class:`SampleKey` indices, plain ``int``
subclasses that also carry the sampler's ``seed`` and the ``epoch`` of the draw. Everything random
that :class:`ImageFolder` does for a sample (stylize or not, which stylized copy, the stylizer's
own draws, a replacement neighbour) comes from ``numpy.random.default_rng([seed, epoch, index, stream])``,
so it depends neither on the worker that loads the sample nor on the worker processes' seeds:
a resumed run loads exactly what an uninterrupted one would have. A plain ``int`` index means
``seed = epoch = 0``.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from selfdesc.errors import ConfigError, DatasetError, ImageError
from selfdesc.io.image import list_images, load_image, resize_image

KEYPOINT_SOURCES = ("sift",)


class SampleKey(int):
    """A dataset index that also carries the sampler's ``seed`` and the ``epoch`` it was drawn in."""

    seed: int
    epoch: int

    def __new__(cls, index: int, seed: int = 0, epoch: int = 0) -> SampleKey:
        key = super().__new__(cls, index)
        key.seed, key.epoch = int(seed), int(epoch)
        return key

    def __reduce__(self) -> tuple[Any, ...]:  # survives the trip to the DataLoader workers
        return (SampleKey, (int(self), self.seed, self.epoch))

    def rng(self, stream: int = 0) -> np.random.Generator:
        """The sample's generator number ``stream``: ``default_rng([seed, epoch, index, stream])``."""
        return np.random.default_rng([self.seed, self.epoch, int(self), stream])


def sift_keypoints(image: np.ndarray, num: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``num`` OpenCV SIFT keypoints of an RGB image, strongest first, padded to ``num``.

    Args:
        image: ``H x W x 3`` float RGB in ``[0, 1]``.
        num: fixed output count.

    Returns:
        ``(num, 2)`` float32 ``(x, y)`` (pixel-centre convention, as OpenCV; padding 0) and
        ``(num,)`` bool validity. Orientation duplicates of one location are merged.
    """
    gray = cv2.cvtColor((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), cv2.COLOR_RGB2GRAY)
    kps = cv2.SIFT_create().detect(gray, None)
    pts = np.array([k.pt for k in kps], np.float32).reshape(-1, 2)
    response = np.array([k.response for k in kps], np.float32)
    pts, first = np.unique(pts, axis=0, return_index=True)
    order = np.argsort(-response[first], kind="stable")[:num]
    out = np.zeros((num, 2), np.float32)
    out[: len(order)] = pts[order]
    mask = np.zeros(num, bool)
    mask[: len(order)] = True
    return out, mask


class ImageFolder(Dataset):
    """RGB images under ``root`` (recursive), each resized to exactly ``size`` ``(W, H)``.

    A file that cannot be decoded is skipped with a warning the first time it is met and
    replaced by the next readable image; :attr:`skipped` lists those files.

    ``__getitem__`` returns ``{"image": (3, H, W) float [0, 1], "index": int}`` plus, when asked:

    * ``keypoints="sift"``: ``"keypoints"`` ``(num_keypoints, 2)`` float32 ``(x, y)`` SIFT
      keypoints of the resized image and ``"keypoint_mask"`` ``(num_keypoints,)`` bool;
    * ``style_p > 0``: ``"image_b"`` ``(3, H, W)``, the source of crop B: with probability
      ``style_p`` a stylized copy of the image (pixel-aligned), else the image itself, and
      ``"stylized"`` (bool). Copies come from ``stylized_root`` (a mirror tree written by
      ``selfdesc stylize``, one of the image's copies drawn at random; the image itself when it
      has none) or, without it, from ``stylizer`` run on the fly;
    * ``num_neighbours = K > 0``: ``"neighbours"`` ``(K, 3, H, W)``, the image's ``K`` nearest
      neighbours in the global ``index`` (self and images not in the folder skipped; a random
      other image where fewer than ``K`` remain) and ``"neighbour_index"`` ``(K,)`` int64.

    Args:
        root: image folder.
        size: ``(W, H)``; images are scaled to cover it and centre-cropped.
        keypoints: ``None`` or ``"sift"``.
        num_keypoints: keypoints per image (padded).
        style_p: probability that crop B's source is stylized (0: no ``image_b``).
        stylizer: online stylizer, a spec for :func:`selfdesc.stylize.load_stylizer` or an object.
        style_bank: style images for a stylizer given by name.
        stylized_root: mirror tree of offline stylized copies (used instead of ``stylizer``).
        index: a global index (``GlobalIndex`` file path or object with ``names`` relative to
            ``root`` and ``neighbours(k) -> (N, k)``), required for ``num_neighbours``.
        num_neighbours: ``K`` neighbour images per sample.
    """

    def __init__(
        self,
        root: str | Path,
        size: tuple[int, int] = (640, 480),
        keypoints: str | None = None,
        num_keypoints: int = 1024,
        style_p: float = 0.0,
        stylizer: Any = None,
        style_bank: str | Path | None = None,
        stylized_root: str | Path | None = None,
        index: Any = None,
        num_neighbours: int = 0,
    ) -> None:
        self.root = Path(root)
        self.files = list_images(self.root)
        self.size = (int(size[0]), int(size[1]))
        self.skipped: list[Path] = []
        if keypoints not in (None, *KEYPOINT_SOURCES):
            raise ConfigError(f"ImageFolder: unknown keypoint source '{keypoints}' (loader sources: {', '.join(KEYPOINT_SOURCES)})")
        self.keypoints, self.num_keypoints = keypoints, int(num_keypoints)
        if not 0.0 <= style_p <= 1.0:
            raise ConfigError(f"ImageFolder: style_p must be in [0, 1], got {style_p}")
        self.style_p = float(style_p)
        self.stylized_root = Path(stylized_root) if stylized_root is not None else None
        self.stylizer = None
        if self.style_p > 0 and self.stylized_root is None:
            if stylizer is None:
                raise ConfigError("ImageFolder: stylization asked (style_p > 0) without a stylizer or stylized_root")
            from selfdesc.stylize import load_stylizer

            self.stylizer = load_stylizer(stylizer, style_bank=style_bank) if isinstance(stylizer, str) else stylizer
        if self.stylized_root is not None and not self.stylized_root.is_dir():
            raise DatasetError(f"{self.stylized_root}: stylized_root is not a folder")
        self._copies: dict[int, list[Path]] = {}
        self.num_neighbours = int(num_neighbours)
        self.neighbour_table = self._neighbour_table(index) if self.num_neighbours > 0 else None

    def __len__(self) -> int:
        return len(self.files)

    # ------------------------------------------------------------------ reading
    def _fit(self, img: np.ndarray) -> np.ndarray:
        """Cover ``size`` keeping the aspect ratio, then centre-crop; ``H x W x 3`` float32."""
        h, w = img.shape[:2]
        W, H = self.size
        f = max(W / w, H / h)
        img, _ = resize_image(img, size=(max(W, round(w * f)), max(H, round(h * f))))
        y0, x0 = (img.shape[0] - H) // 2, (img.shape[1] - W) // 2
        return np.ascontiguousarray(img[y0 : y0 + H, x0 : x0 + W])

    def _read(self, path: Path) -> np.ndarray:
        return self._fit(load_image(path).image)

    @staticmethod
    def _tensor(img: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))

    def _first_readable(self, index: int) -> tuple[int, np.ndarray]:
        for k in range(len(self.files)):
            i = (index + k) % len(self.files)
            path = self.files[i]
            if path in self.skipped:
                continue
            try:
                return i, self._read(path)
            except ImageError as exc:
                self.skipped.append(path)
                warnings.warn(f"skipping unreadable training image: {exc}", stacklevel=3)
        raise DatasetError(f"{self.root}: none of the {len(self.files)} images could be read")

    # ------------------------------------------------------------------ extras
    def _style_source(self, i: int, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """Crop B's source image: a stylized copy with probability ``style_p``."""
        if rng.random() >= self.style_p:
            return img, False
        if self.stylizer is not None:
            from selfdesc.stylize import apply_stylizer

            return apply_stylizer(self.stylizer, img, rng), True
        if i not in self._copies:
            from selfdesc.stylize import find_stylized_copies

            self._copies[i] = find_stylized_copies(self.files[i], self.root, self.stylized_root)
        copies = self._copies[i]
        if not copies:
            return img, False
        path = copies[int(rng.integers(len(copies)))]
        try:
            styled = self._read(path)
        except ImageError as exc:
            warnings.warn(f"using the original instead of an unreadable stylized copy: {exc}", stacklevel=3)
            return img, False
        if styled.shape != img.shape:  # a copy of another size cannot be pixel-aligned
            raise DatasetError(f"{path}: stylized copy does not have the size of {self.files[i]}")
        return styled, True

    def _neighbour_table(self, index: Any) -> np.ndarray:
        """``(len(files), K)`` folder indices of each image's neighbours (-1: none)."""
        if index is None:
            raise ConfigError("ImageFolder: num_neighbours > 0 needs a global index (data.index, built by `selfdesc index`)")
        if isinstance(index, (str, Path)):
            from selfdesc.retrieval import GlobalIndex

            index = GlobalIndex.load(index)
        position = {p.relative_to(self.root).as_posix(): i for i, p in enumerate(self.files)}
        names = [str(n) for n in index.names]
        row_of = {n: r for r, n in enumerate(names)}
        missing = [n for n in position if n not in row_of]
        if missing:
            raise DatasetError(f"{self.root}: {len(missing)} image(s) not in the global index, e.g. {missing[0]} (rebuild it)")
        K = self.num_neighbours
        ranked = np.asarray(index.neighbours(min(K + 1, len(names) - 1)))
        table = np.full((len(self.files), K), -1, np.int64)
        for name, i in position.items():
            found = [position[names[r]] for r in ranked[row_of[name]] if names[r] in position and names[r] != name]
            table[i, : min(K, len(found))] = found[:K]
        return table

    def _neighbours(self, i: int, key: SampleKey) -> tuple[torch.Tensor, torch.Tensor]:
        assert self.neighbour_table is not None
        rng = key.rng(stream=1)
        ids, images = [], []
        for j in self.neighbour_table[i]:
            if j < 0 and len(self.files) > 1:  # fewer neighbours than K: a random other image
                j = (i + 1 + int(rng.integers(len(self.files) - 1))) % len(self.files)
            j, img = self._first_readable(int(max(j, 0)))
            ids.append(j)
            images.append(self._tensor(img))
        return torch.stack(images), torch.tensor(ids, dtype=torch.int64)

    def __getitem__(self, index: int) -> dict[str, Any]:
        key = index if isinstance(index, SampleKey) else SampleKey(index)
        i, img = self._first_readable(int(key))
        item: dict[str, Any] = {"image": self._tensor(img), "index": i}
        if self.keypoints == "sift":
            kp, mask = sift_keypoints(img, self.num_keypoints)
            item["keypoints"], item["keypoint_mask"] = torch.from_numpy(kp), torch.from_numpy(mask)
        if self.style_p > 0:
            styled, done = self._style_source(i, img, key.rng())
            item["image_b"], item["stylized"] = self._tensor(styled), done
        if self.neighbour_table is not None:
            item["neighbours"], item["neighbour_index"] = self._neighbours(i, key)
        return item


@dataclass
class ResumableSampler(Sampler[int]):
    """Endless seeded shuffling that can start at any point of its sequence.

    Epoch ``e`` uses the permutation drawn from ``seed + e``; with ``num_replicas > 1`` each
    rank takes every ``num_replicas``-th index (DistributedSampler style, padded by wrapping).
    ``start`` is how many indices this rank has already consumed: a run resumed at step ``s``
    with batch size ``b`` sets ``start = s * b`` and sees exactly the indices an uninterrupted
    run would have seen (prefetching by the DataLoader does not matter, nothing is mutated).
    Indices are :class:`SampleKey` s stamped with ``seed`` and the epoch (per-sample RNG).
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
            yield from (SampleKey(i, self.seed, epoch) for i in self.epoch_order(epoch)[position:])
            epoch, position = epoch + 1, 0
