"""Plain homography pair lists (one pair per line, no split).

Format, whitespace-separated::

    # comment
    image0 image1 h00 h01 h02 h10 h11 h12 h20 h21 h22

``H`` (row-major) maps image-0 pixels to image-1 pixels (pixel-centre convention). Relative
image paths are relative to the list file's folder; absolute paths are allowed. Everything after
``#`` is a comment, blank lines are skipped; paths may therefore contain neither spaces nor ``#``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from selfdesc.datasets.base import HomographyPair, check_homography, read_pair_lines
from selfdesc.errors import DatasetError

NUM_FIELDS = 11


def _parse_line(fields: list[str], where: str, folder: Path) -> tuple[Path, Path, np.ndarray]:
    if len(fields) != NUM_FIELDS:
        raise DatasetError(f"{where}: expected {NUM_FIELDS} fields (image0 image1 and 9 homography values), got {len(fields)}")
    try:
        values = np.array([float(v) for v in fields[2:]], dtype=np.float64)
    except ValueError:
        bad = next(v for v in fields[2:] if not _is_float(v))
        raise DatasetError(f"{where}: homography value {bad!r} is not a number") from None
    H = check_homography(values, where)
    images = []
    for name in fields[:2]:
        path = Path(name) if Path(name).is_absolute() else folder / name
        if not path.is_file():
            raise DatasetError(f"{where}: image {path} not found")
        images.append(path)
    return images[0], images[1], H


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_pair_list(path: str | Path) -> list[HomographyPair]:
    """Read a homography pair list.

    Args:
        path: the text file (format in the module docstring).

    Returns:
        Pairs in file order; ``split="overall"``, ``sequence=""``, ``name="image0|image1"``
        (the paths as written in the file).

    Raises:
        DatasetError: missing file, a line with the wrong field count, a non-numeric, non-finite
            or singular homography, a missing image, a repeated pair, or no pair at all
            (messages name ``file:line``).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file" if not path.exists() else f"{path}: not a file")
    pairs: list[HomographyPair] = []
    seen: dict[str, int] = {}
    for where, number, fields in read_pair_lines(path):
        image0, image1, H = _parse_line(fields, where, path.parent)
        name = f"{fields[0]}|{fields[1]}"
        if name in seen:
            raise DatasetError(f"{where}: pair {name} repeats line {seen[name]}")
        seen[name] = number
        pairs.append(HomographyPair(image0=image0, image1=image1, H=H, split="overall", name=name))
    if not pairs:
        raise DatasetError(f"{path}: no pairs in the list")
    return pairs
