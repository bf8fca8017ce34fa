"""A bank of style images (webcam frames at night, in fog, at dusk, ...) that stylizers draw from."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from selfdesc.errors import ConfigError
from selfdesc.io.image import list_images, load_image, resize_image


class StyleBank:
    """Style images drawn uniformly at random, loaded lazily and cached.

    Args:
        source: a folder of images (searched recursively) or a sequence of ``H x W x 3``
            RGB arrays (float in ``[0, 1]`` or uint8).
        max_side: images are downsized (aspect kept) so that the longest side is at most this;
            colour statistics do not need more pixels.

    Raises:
        DatasetError: the folder is missing or holds no image.
        ConfigError: an array is not ``H x W x 3`` or the list is empty.
    """

    def __init__(self, source: str | Path | Sequence[np.ndarray], max_side: int = 512) -> None:
        self.max_side = int(max_side)
        self._cache: dict[int, np.ndarray] = {}
        if isinstance(source, (str, Path)):
            self.paths: list[Path] | None = list_images(source)
            self.description = str(source)
        else:
            arrays = list(source)
            if not arrays:
                raise ConfigError("style bank: the list of style images is empty")
            self.paths = None
            self.description = f"{len(arrays)} in-memory images"
            for i, arr in enumerate(arrays):
                self._cache[i] = self._prepare(_as_float_rgb(arr, i))

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else len(self._cache)

    def __repr__(self) -> str:
        return f"StyleBank({self.description}, {len(self)} images)"

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(resize_image(image, resize_max=self.max_side)[0], dtype=np.float32)

    def get(self, index: int) -> np.ndarray:
        """Style image ``index``: ``h x w x 3`` float32 RGB in ``[0, 1]`` (downsized).

        Raises:
            ImageError: the style file cannot be read (one line, naming it).
        """
        if index not in self._cache:
            assert self.paths is not None
            self._cache[index] = self._prepare(load_image(self.paths[index]).image)
        return self._cache[index]

    def draw(self, rng: np.random.Generator) -> np.ndarray:
        """One style image chosen uniformly at random with ``rng``."""
        return self.get(int(rng.integers(len(self))))


def _as_float_rgb(array: np.ndarray, index: int) -> np.ndarray:
    arr = np.asarray(array)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 2:
        raise ConfigError(f"style bank: image {index} has shape {arr.shape}, expected H x W x 3 RGB")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    return np.clip(arr.astype(np.float32), 0.0, 1.0)


def as_style_bank(source: StyleBank | str | Path | Sequence[np.ndarray] | None) -> StyleBank | None:
    """Pass a :class:`StyleBank` (or ``None``) through; build one from a folder or a list of arrays."""
    if source is None or isinstance(source, StyleBank):
        return source
    return StyleBank(source)
