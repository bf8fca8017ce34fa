"""Relative-pose pair lists in the SuperGlue format (ScanNet / YFCC ``*_pairs_with_gt.txt``).

One pair per line, whitespace-separated::

    name0 name1 rot0 rot1 K0[9] K1[9] T_0to1[16]

``K0``/``K1`` are the row-major 3x3 intrinsics of the two images (pixel-centre convention, as
OpenCV), ``T_0to1`` the row-major 4x4 transform that maps points from camera 0 to camera 1
(``X1 = R X0 + t``). ``rot0``/``rot1`` are the number of 90° rotations SuperGlue applies before
matching; only ``0`` is supported (the images are used as stored). Image names are relative to the
image folder (by default ``images/`` beside the list, else the list's own folder). Everything after
``#`` is a comment; blank lines are skipped.

:class:`PosePair` is the record every relative-pose dataset yields (see also
:mod:`selfdesc.datasets.strecha`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfdesc.datasets.base import read_pair_lines
from selfdesc.errors import DatasetError

NUM_FIELDS = 2 + 2 + 9 + 9 + 16


@dataclass(frozen=True)
class PosePair:
    """Two images of a scene with known intrinsics and relative pose.

    Attributes:
        image0, image1: image files.
        K0, K1: ``3 x 3`` float64 intrinsics (pixel-centre convention).
        T_0to1: ``4 x 4`` float64, maps camera-0 coordinates to camera-1 coordinates.
        name: a unique, readable id, e.g. ``"fountain-P11/0000-0003"``.
        scene: the scene the pair belongs to (``""`` when the list has none).
    """

    image0: Path
    image1: Path
    K0: np.ndarray = field(repr=False)
    K1: np.ndarray = field(repr=False)
    T_0to1: np.ndarray = field(repr=False)
    name: str
    scene: str = ""


def _floats(values: list[str], where: str, what: str) -> np.ndarray:
    try:
        arr = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        raise DatasetError(f"{where}: {what} has a value that is not a number") from None
    if not np.isfinite(arr).all():
        raise DatasetError(f"{where}: {what} has NaN or infinite values")
    return arr


def _parse_line(fields: list[str], where: str, image_dir: Path) -> PosePair:
    if len(fields) != NUM_FIELDS:
        raise DatasetError(f"{where}: expected {NUM_FIELDS} fields (name0 name1 rot0 rot1 K0[9] K1[9] T_0to1[16]), got {len(fields)}")
    if fields[2:4] != ["0", "0"]:
        raise DatasetError(f"{where}: rotated pairs (rot0/rot1 = {fields[2]}/{fields[3]}) are not supported, only 0")
    K0 = _floats(fields[4:13], where, "K0").reshape(3, 3)
    K1 = _floats(fields[13:22], where, "K1").reshape(3, 3)
    T = _floats(fields[22:38], where, "T_0to1").reshape(4, 4)
    for K, what in ((K0, "K0"), (K1, "K1")):
        if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
            raise DatasetError(f"{where}: {what} is not an intrinsics matrix (positive focal lengths, last row 0 0 1)")
    R = T[:3, :3]
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-3) and np.linalg.det(R) > 0 and np.allclose(T[3], [0, 0, 0, 1])):
        raise DatasetError(f"{where}: T_0to1 is not a rigid transform")
    images = []
    for name in fields[:2]:
        path = image_dir / name
        if not path.is_file():
            raise DatasetError(f"{where}: image {path} not found")
        images.append(path)
    return PosePair(images[0], images[1], K0, K1, T, name=f"{fields[0]}|{fields[1]}")


def find_pair_list(root: str | Path) -> Path:
    """The pair list of a folder: its single ``*pairs*.txt`` file (or ``root`` if it is a file)."""
    root = Path(root)
    if root.is_file():
        return root
    if not root.is_dir():
        raise DatasetError(f"{root}: no such file or folder")
    found = sorted(root.glob("*pairs*.txt"))
    if len(found) != 1:
        raise DatasetError(f"{root}: expected exactly one *pairs*.txt pair list, found {len(found)}")
    return found[0]


def load_pose_pairs(path: str | Path, image_dir: str | Path | None = None, scene: str = "") -> list[PosePair]:
    """Read a SuperGlue-format pair list.

    Args:
        path: the list file, or a folder holding exactly one ``*pairs*.txt``.
        image_dir: where the images are (default: ``images/`` beside the list when it exists,
            else the list's folder).
        scene: stored in every pair's ``scene``.

    Raises:
        DatasetError: missing file or image, wrong field count, non-numeric or invalid K / T,
            rotated pairs, a repeated pair, or an empty list (messages name ``file:line``).
    """
    path = find_pair_list(path)
    if image_dir is None:
        image_dir = path.parent / "images" if (path.parent / "images").is_dir() else path.parent
    image_dir = Path(image_dir)
    pairs: list[PosePair] = []
    seen: dict[str, int] = {}
    for where, number, fields in read_pair_lines(path):
        pair = _parse_line(fields, where, image_dir)
        if pair.name in seen:
            raise DatasetError(f"{where}: pair {pair.name} repeats line {seen[pair.name]}")
        seen[pair.name] = number
        pairs.append(PosePair(pair.image0, pair.image1, pair.K0, pair.K1, pair.T_0to1, pair.name, scene))
    if not pairs:
        raise DatasetError(f"{path}: no pairs in the list")
    return pairs
