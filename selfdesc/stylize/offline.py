"""Stylized training copies: offline (a mirror tree of JPEGs) and online (per crop, with probability p).

Layout of the offline copies: image ``<images_root>/<rel>/<stem>.<ext>`` gets copies
``<stylized_root>/<rel>/<stem>_st00.jpg``, ``..._st01.jpg``, ... (``_st<k>`` with at least two
digits, JPEG). :func:`find_stylized_copies` also accepts the HNDesc release layout, where the
single copy has the image's own relative path and name (``MegaDepth-stylized/...``).

Copy ``k`` of an image is made by ``stylizers[k % len(stylizers)]`` with the generator
``numpy.random.default_rng([seed, crc32(rel_path), k])``: a copy does not depend on the other
images, the order or earlier interrupted runs, so resuming gives the same files as one run.
Copies have the size of the image as :func:`~selfdesc.io.image.load_image` returns it (EXIF
orientation applied, so load both with that loader).
"""
from __future__ import annotations

import os
import re
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from selfdesc.datasets.photometric import to_uint8
from selfdesc.errors import ConfigError, DatasetError, ImageError
from selfdesc.io.atomic import atomic_path
from selfdesc.io.image import list_images, load_image
from selfdesc.stylize.base import Stylizer, apply_stylizer, load_stylizer
from selfdesc.stylize.style_bank import StyleBank, as_style_bank

COPY_SUFFIX = ".jpg"


def _absolute(path: Path) -> Path:
    """Absolute and normalised, symlinks kept (a symlinked image stays in its folder)."""
    return Path(os.path.abspath(path))


def _relative(image_path: Path, images_root: Path) -> Path:
    try:
        return _absolute(image_path).relative_to(_absolute(images_root))
    except ValueError:
        raise DatasetError(f"{image_path}: not inside the image folder {images_root}") from None


def stylized_copy_path(image_path: str | Path, images_root: str | Path, stylized_root: str | Path, k: int) -> Path:
    """Where copy ``k`` of ``image_path`` goes: ``<stylized_root>/<rel folder>/<stem>_st<kk>.jpg``."""
    rel = _relative(Path(image_path), Path(images_root))
    return Path(stylized_root) / rel.parent / f"{rel.stem}_st{k:02d}{COPY_SUFFIX}"


def find_stylized_copies(image_path: str | Path, images_root: str | Path, stylized_root: str | Path) -> list[Path]:
    """The stylized copies of one image, sorted by copy index (empty list when there are none).

    Finds ``<stem>_st<k>.jpg`` copies written by :func:`stylize_folder`, and a same-name file
    at the same relative path (HNDesc release layout), listed first.

    Raises:
        DatasetError: ``image_path`` is not inside ``images_root``.
    """
    rel = _relative(Path(image_path), Path(images_root))
    folder = Path(stylized_root) / rel.parent
    if not folder.is_dir():
        return []
    pattern = re.compile(rf"{re.escape(rel.stem)}_st(\d+){re.escape(COPY_SUFFIX)}")
    numbered = []
    for entry in folder.iterdir():
        match = pattern.fullmatch(entry.name)
        if match and entry.is_file():
            numbered.append((int(match.group(1)), entry))
    same_name = folder / rel.name
    found = [same_name] if same_name.is_file() else []
    return found + [p for _, p in sorted(numbered)]


@dataclass
class StylizeSummary:
    """What :func:`stylize_folder` did.

    Attributes:
        images: images found.
        written: copies written in this run.
        existing: copies already present and kept (resumed).
        failed: images skipped because they could not be read.
        out_dir: the mirror tree root.
    """

    images: int = 0
    written: int = 0
    existing: int = 0
    failed: list[Path] = field(default_factory=list)
    out_dir: Path | None = None


def _resolve_stylizers(stylizers: Any, style_bank: StyleBank | None) -> list[Any]:
    items = [stylizers] if isinstance(stylizers, str) or callable(stylizers) else list(stylizers)
    if not items:
        raise ConfigError("no stylizer given")
    return [load_stylizer(s, style_bank=style_bank) if isinstance(s, str) else s for s in items]


def _write_jpeg(image: np.ndarray, target: Path, quality: int) -> None:
    with atomic_path(target) as tmp:
        Image.fromarray(to_uint8(image)).save(tmp, format="JPEG", quality=quality)


def stylize_folder(
    images_dir: str | Path,
    out_dir: str | Path,
    stylizers: Stylizer | str | Sequence[Stylizer | str],
    copies_per_image: int = 12,
    seed: int = 0,
    style_bank: StyleBank | str | Path | Sequence[np.ndarray] | None = None,
    overwrite: bool = False,
    jpeg_quality: int = 95,
    progress: bool = True,
) -> StylizeSummary:
    """Write ``copies_per_image`` stylized copies of every image under ``images_dir`` (see module doc).

    Args:
        images_dir: folder of images (searched recursively; files under ``out_dir`` are ignored).
        out_dir: root of the mirror tree.
        stylizers: one stylizer or several (used in turn: copy ``k`` uses ``k % len``); names
            and ``path.py:Class`` specs are built with :func:`load_stylizer`.
        copies_per_image: ``N`` copies per image (``_st00`` ... ``_st{N-1}``).
        seed: base seed of the per-copy generators.
        style_bank: style images for stylizers given by name.
        overwrite: rewrite copies that exist (default: keep them, i.e. resume).
        jpeg_quality: 1-100.
        progress: show a tqdm bar.

    Returns:
        A :class:`StylizeSummary`; unreadable images are skipped with a warning and listed in ``failed``.

    Raises:
        DatasetError: no image found, or ``out_dir`` is ``images_dir``.
        ConfigError: bad stylizer spec or count, or a stylizer that returns a wrong shape.
    """
    images_root, out_root = Path(images_dir), Path(out_dir)
    if copies_per_image < 1:
        raise ConfigError(f"copies_per_image must be >= 1, got {copies_per_image}")
    if not 1 <= jpeg_quality <= 100:
        raise ConfigError(f"jpeg_quality must be in 1-100, got {jpeg_quality}")
    if _absolute(out_root) == _absolute(images_root):
        raise DatasetError(f"{out_root}: the output folder must differ from the image folder")
    chosen = _resolve_stylizers(stylizers, as_style_bank(style_bank))
    files = [p for p in list_images(images_root) if not _absolute(p).is_relative_to(_absolute(out_root))]
    if not files:
        raise DatasetError(f"{images_root}: no image files outside the output folder {out_root}")
    summary = StylizeSummary(images=len(files), out_dir=out_root)
    for path in tqdm(files, desc="stylize", unit="img", disable=not progress):
        rel = _relative(path, images_root)
        targets = [stylized_copy_path(path, images_root, out_root, k) for k in range(copies_per_image)]
        todo = [k for k, t in enumerate(targets) if overwrite or not t.exists()]
        summary.existing += copies_per_image - len(todo)
        if not todo:
            continue
        try:
            image = load_image(path).image
        except ImageError as exc:
            warnings.warn(f"skipping {exc}", stacklevel=2)
            summary.failed.append(path)
            continue
        key = zlib.crc32(rel.as_posix().encode("utf-8"))
        for k in todo:
            rng = np.random.default_rng([seed, key, k])
            _write_jpeg(apply_stylizer(chosen[k % len(chosen)], image, rng), targets[k], jpeg_quality)
            summary.written += 1
    if summary.failed:
        warnings.warn(f"{len(summary.failed)} of {len(files)} images could not be read and were skipped", stacklevel=2)
    return summary


class OnlineStylizer(Stylizer):
    """Restyle an image (a training crop) with probability ``p``, else return it unchanged.

    HNDesc uses the stylized copy for crop B with probability 0.7 (``U(0,1) > 0.3``; 0.5 for
    its MegaDepth+PhotoTourism set, 0.6 for Aachen), methods.md §2.4.

    Args:
        stylizer: any stylizer (or a spec for :func:`load_stylizer`).
        p: probability of restyling, in ``[0, 1]``.
        style_bank: style images when ``stylizer`` is a spec.
    """

    def __init__(self, stylizer: Any, p: float = 0.7, style_bank: StyleBank | str | Path | None = None) -> None:
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"online stylization probability must be in [0, 1], got {p}")
        self.stylizer = load_stylizer(stylizer, style_bank=style_bank) if isinstance(stylizer, str) else stylizer
        self.p = float(p)
        self.name = f"online({getattr(self.stylizer, 'name', type(self.stylizer).__name__)}, p={self.p:g})"

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.p:
            return image
        return apply_stylizer(self.stylizer, image, rng)
