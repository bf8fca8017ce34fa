"""Incremental Structure-from-Motion with pycolmap on a prepared database, and its summary.

The largest model (most registered images) is written to ``<out>/sfm`` as COLMAP binary files
(``cameras.bin``, ``images.bin``, ``points3D.bin``, plus ``rigs.bin`` / ``frames.bin``); all
models stay in ``<out>/models/<k>``.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from selfdesc.errors import DatasetError
from selfdesc.sfm.colmap_db import colmap_logging

SUMMARY_FORMAT = "registered {registered}/{num_images} images, {points} points, track length {track_length:.2f}, reprojection error {reprojection_error:.3f} px"


def run_incremental_mapping(
    database: str | Path,
    image_dir: str | Path,
    out: str | Path,
    min_num_matches: int = 15,
    num_threads: int = -1,
    seed: int = 0,
    verbose: bool = False,
) -> Any:
    """Run COLMAP's incremental mapper; returns the largest ``pycolmap.Reconstruction`` or ``None``.

    Args:
        database: a database with keypoints and verified matches (see :mod:`selfdesc.sfm.colmap_db`).
        image_dir: the image folder (used for point colours).
        out: output folder (``models/`` and ``sfm/`` are created in it).
        min_num_matches: fewest inlier matches for a pair to be used.
        seed: COLMAP's random seed (for repeatable runs).
        verbose: let COLMAP log at INFO level (default: warnings and errors only).
    """
    import pycolmap

    out = Path(out)
    models = out / "models"
    if models.exists():
        shutil.rmtree(models)
    models.mkdir(parents=True)
    options = pycolmap.IncrementalPipelineOptions()
    options.min_num_matches = min_num_matches
    options.num_threads = num_threads
    options.random_seed = seed
    with colmap_logging(verbose):
        recs = pycolmap.incremental_mapping(database, image_dir, models, options)
    if not recs:
        return None
    best = max(recs.values(), key=lambda r: r.num_reg_images())
    sfm = out / "sfm"
    if sfm.exists():
        shutil.rmtree(sfm)
    sfm.mkdir(parents=True)
    best.write(sfm)
    return best


def summarize(reconstruction: Any, num_images: int) -> dict[str, Any]:
    """``{"num_images", "registered", "points", "track_length", "reprojection_error"}`` of a
    reconstruction (``None``: nothing registered; lengths and errors are then 0)."""
    if reconstruction is None:
        return {"num_images": num_images, "registered": 0, "points": 0, "track_length": 0.0, "reprojection_error": 0.0}
    return {
        "num_images": num_images,
        "registered": int(reconstruction.num_reg_images()),
        "points": int(reconstruction.num_points3D()),
        "track_length": float(reconstruction.compute_mean_track_length()) if reconstruction.num_points3D() else 0.0,
        "reprojection_error": float(reconstruction.compute_mean_reprojection_error()) if reconstruction.num_points3D() else 0.0,
    }


def summary_line(summary: dict[str, Any]) -> str:
    """``registered N/M images, P points, track length T, reprojection error E px``."""
    return SUMMARY_FORMAT.format(**summary)


def camera_centres(reconstruction: Any) -> dict[str, np.ndarray]:
    """Image name -> ``(3,)`` camera centre of every registered image."""
    out = {}
    for image in reconstruction.images.values():
        if image.has_pose:
            out[image.name] = np.asarray(image.projection_center(), np.float64)
    return out


def camera_up(reconstruction: Any) -> np.ndarray:
    """Mean "up" direction (``-y`` camera axis, world frame) of the registered images."""
    ups = [-np.asarray(image.cam_from_world().rotation.matrix())[1] for image in reconstruction.images.values() if image.has_pose]
    if not ups:
        raise DatasetError("reconstruction has no registered image")
    up = np.mean(ups, axis=0)
    return up / np.linalg.norm(up)


def points(reconstruction: Any) -> np.ndarray:
    """``(P, 3)`` 3D points."""
    xyz = [p.xyz for p in reconstruction.points3D.values()]
    return np.asarray(xyz, np.float64).reshape(-1, 3)
