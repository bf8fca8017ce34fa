"""The homography-pair record shared by every evaluation dataset."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from selfdesc.errors import DatasetError


@dataclass(frozen=True)
class HomographyPair:
    """Two images related by a known homography.

    Attributes:
        image0, image1: image files.
        H: ``3 x 3`` float64, maps image-0 pixels to image-1 pixels (pixel-centre convention).
        split: ``"i"`` (illumination), ``"v"`` (viewpoint) or ``"overall"`` when the dataset
            has no split.
        name: a unique, readable id, e.g. ``"v_graffiti/1-3"``.
        sequence: the sequence the pair belongs to (``""`` for plain pair lists).
    """

    image0: Path
    image1: Path
    H: np.ndarray = field(repr=False)
    split: str
    name: str
    sequence: str = ""


def check_homography(H: np.ndarray, where: str) -> np.ndarray:
    """Validate a ground-truth homography read from a file.

    Args:
        H: the values read (any shape).
        where: what to name in the error, e.g. ``"seq/H_1_2"`` or ``"pairs.txt:7"``.

    Returns:
        ``H`` as a ``3 x 3`` float64 array.

    Raises:
        DatasetError: not 3x3, non-finite values, or singular (condition number above 1e12).
    """
    H = np.asarray(H, dtype=np.float64)
    if H.size != 9:
        raise DatasetError(f"{where}: homography must have 9 values (3x3), got {H.size}")
    H = H.reshape(3, 3)
    if not np.isfinite(H).all():
        raise DatasetError(f"{where}: homography has NaN or infinite values")
    if not np.linalg.cond(H) < 1e12:
        raise DatasetError(f"{where}: homography is singular")
    return H


def read_pair_lines(path: Path) -> Iterator[tuple[str, int, list[str]]]:
    """The non-empty lines of a pair-list file, comments (after ``#``) removed.

    Yields ``(where, number, fields)``: ``"file:line"`` for error messages, the 1-based line
    number and the whitespace-separated fields.

    Raises:
        DatasetError: the file cannot be read as UTF-8 text.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read pair list ({type(exc).__name__})") from None
    for number, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if fields:
            yield f"{path}:{number}", number, fields
