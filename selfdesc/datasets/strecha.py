"""Strecha et al. (CVPR 2008) multi-view scenes with ground-truth cameras.

Layout of a scene folder (e.g. ``fountain-P11``)::

    images/NNNN.jpg
    cameras/NNNN.jpg.camera

A ``.camera`` file has 9 rows: rows 1-3 ``K``; row 4 ``0 0 0`` (no distortion); rows 5-7 ``R``,
the **camera-to-world** rotation; row 8 ``C``, the camera centre in world coordinates; row 9
``width height``. The projection is ``P = K [R^T | -R^T C]``. ``K`` is taken as given, in the
pixel-centre convention used throughout selfdesc (the sub-pixel origin of the original
calibration is not documented; it moves the principal point by at most 0.5 px).

Co-visible pairs (our definition, the data ships no pair list): the *scene centre* is the point
closest, in least squares, to all optical axes. For camera ``i``, a 16 x 16 grid of pixels is
back-projected onto the fronto-parallel plane through the scene centre and projected into
camera ``j``; ``overlap(i, j)`` is the fraction that lands inside image ``j`` in front of it. A pair
is co-visible when ``min(overlap(i, j), overlap(j, i)) >= min_overlap`` (default 0.5) **and** the
optical axes differ by at most ``max_angle`` degrees (default 60°; the overlap alone ignores
viewing angle, so pairs seeing the same wall from 100° apart would pass). ``min_overlap=0,
max_angle=180`` keeps every pair.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfdesc.datasets.scannet_pairs import PosePair
from selfdesc.errors import DatasetError
from selfdesc.io.image import list_images

DEFAULT_MIN_OVERLAP = 0.5
DEFAULT_MAX_ANGLE = 60.0
_GRID = 16


@dataclass(frozen=True)
class StrechaCamera:
    """A calibrated pinhole camera.

    Attributes:
        K: ``3 x 3`` intrinsics; R: ``3 x 3`` camera-to-world rotation; C: ``(3,)`` centre
        (world); size: ``(W, H)``.
    """

    K: np.ndarray = field(repr=False)
    R: np.ndarray = field(repr=False)
    C: np.ndarray
    size: tuple[int, int]

    def world_to_camera(self, X: np.ndarray) -> np.ndarray:
        """``(N, 3)`` world points -> ``(N, 3)`` camera coordinates."""
        return (np.asarray(X) - self.C) @ self.R

    def project(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(N, 3)`` world points -> ``(N, 2)`` pixels and ``(N,)`` depths."""
        Xc = self.world_to_camera(X)
        uv = Xc @ self.K.T
        return uv[:, :2] / uv[:, 2:3], Xc[:, 2]


@dataclass(frozen=True)
class StrechaScene:
    """A scene: its name, images (sorted) and the GT camera of each image name."""

    name: str
    root: Path
    images: list[Path]
    cameras: dict[str, StrechaCamera] = field(repr=False)


def read_camera(path: str | Path) -> StrechaCamera:
    """Parse one ``.camera`` file (format in the module docstring).

    Raises:
        DatasetError: missing file, wrong number of values, non-numeric values, an invalid K, or
            an R that is not a rotation.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: camera file not found")
    try:
        values = np.array(path.read_text(encoding="utf-8").split(), dtype=np.float64)
    except (ValueError, UnicodeDecodeError):
        raise DatasetError(f"{path}: camera file has a value that is not a number") from None
    if values.size != 26:
        raise DatasetError(f"{path}: expected 26 numbers (K, 0 0 0, R, C, width height), got {values.size}")
    K, R, C, size = values[:9].reshape(3, 3), values[12:21].reshape(3, 3), values[21:24], values[24:26]
    if not (K[0, 0] > 0 and K[1, 1] > 0 and np.allclose(K[2], [0, 0, 1])):
        raise DatasetError(f"{path}: K is not an intrinsics matrix (positive focal lengths, last row 0 0 1)")
    if not (np.allclose(R @ R.T, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0):
        raise DatasetError(f"{path}: R is not a rotation matrix")
    if not (size > 0).all() or not np.allclose(size, np.round(size)):
        raise DatasetError(f"{path}: image size {size.tolist()} is not two positive integers")
    return StrechaCamera(K=K, R=R, C=C, size=(int(size[0]), int(size[1])))


def load_scene(folder: str | Path) -> StrechaScene:
    """Read a scene folder: every image of ``images/`` with its ``cameras/<image name>.camera``.

    Raises:
        DatasetError: no ``images/`` folder, no images, or a missing / malformed camera file.
    """
    folder = Path(folder)
    image_dir = folder / "images"
    if not image_dir.is_dir():
        raise DatasetError(f"{folder}: not a Strecha scene (no images/ folder)")
    images = list_images(image_dir, recursive=False)
    cameras = {p.name: read_camera(folder / "cameras" / f"{p.name}.camera") for p in images}
    return StrechaScene(name=folder.name, root=folder, images=images, cameras=cameras)


def load_scenes(root: str | Path) -> list[StrechaScene]:
    """Every scene under ``root`` (sub-folders holding ``images/``), sorted by name; ``root``
    itself when it is a scene."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such folder")
    if (root / "images").is_dir():
        return [load_scene(root)]
    scenes = [load_scene(d) for d in sorted(root.iterdir()) if (d / "images").is_dir()]
    if not scenes:
        raise DatasetError(f"{root}: no scene folders (sub-folders with images/ and cameras/)")
    return scenes


def relative_pose(cam0: StrechaCamera, cam1: StrechaCamera) -> np.ndarray:
    """``4 x 4`` transform mapping camera-0 coordinates to camera-1 coordinates."""
    T = np.eye(4)
    T[:3, :3] = cam1.R.T @ cam0.R
    T[:3, 3] = cam1.R.T @ (cam0.C - cam1.C)
    return T


def scene_centre(cameras: list[StrechaCamera]) -> np.ndarray:
    """The ``(3,)`` point closest in least squares to every optical axis ``C + s R[:, 2]``."""
    A = np.zeros((3, 3))
    b = np.zeros(3)
    for cam in cameras:
        z = cam.R[:, 2]
        P = np.eye(3) - np.outer(z, z)
        A += P
        b += P @ cam.C
    return np.linalg.lstsq(A, b, rcond=None)[0]


def overlap(cam0: StrechaCamera, cam1: StrechaCamera, centre: np.ndarray) -> float:
    """Fraction of a pixel grid of ``cam0``, placed on the fronto-parallel plane through
    ``centre``, that ``cam1`` sees (see the module docstring)."""
    depth = float(cam0.world_to_camera(centre[None])[0, 2])
    if depth <= 0:
        return 0.0
    W, H = cam0.size
    u, v = np.meshgrid((np.arange(_GRID) + 0.5) * W / _GRID - 0.5, (np.arange(_GRID) + 0.5) * H / _GRID - 0.5)
    pix = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    rays = pix @ np.linalg.inv(cam0.K).T
    X = (rays * depth) @ cam0.R.T + cam0.C
    uv, z = cam1.project(X)
    W1, H1 = cam1.size
    inside = (z > 0) & (uv[:, 0] >= -0.5) & (uv[:, 0] <= W1 - 0.5) & (uv[:, 1] >= -0.5) & (uv[:, 1] <= H1 - 0.5)
    return float(inside.mean())


def axis_angle(cam0: StrechaCamera, cam1: StrechaCamera) -> float:
    """Angle in degrees between the optical axes of two cameras."""
    return float(np.degrees(np.arccos(np.clip(cam0.R[:, 2] @ cam1.R[:, 2], -1.0, 1.0))))


def covisible_pairs(
    scene: StrechaScene, min_overlap: float = DEFAULT_MIN_OVERLAP, max_angle: float = DEFAULT_MAX_ANGLE
) -> list[PosePair]:
    """Every co-visible image pair ``(i, j)``, ``i < j`` in name order, with GT K and pose.

    Args:
        scene: a loaded scene.
        min_overlap: threshold on the symmetric overlap (module docstring).
        max_angle: largest angle between the optical axes, in degrees.
    """
    names = [p.name for p in scene.images]
    cams = [scene.cameras[n] for n in names]
    centre = scene_centre(cams)
    pairs = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            ov = min(overlap(cams[i], cams[j], centre), overlap(cams[j], cams[i], centre))
            if ov >= min_overlap and axis_angle(cams[i], cams[j]) <= max_angle:
                pairs.append(
                    PosePair(
                        scene.images[i],
                        scene.images[j],
                        cams[i].K,
                        cams[j].K,
                        relative_pose(cams[i], cams[j]),
                        name=f"{scene.name}/{Path(names[i]).stem}-{Path(names[j]).stem}",
                        scene=scene.name,
                    )
                )
    return pairs
