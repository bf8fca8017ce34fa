"""Import hloc-layout features and matches into a COLMAP database (pycolmap >= 3.12).

Inputs are the files of :mod:`selfdesc.pipeline.h5io` (features.h5, matches.h5) and a pair list.
COLMAP keypoints use the **corner** convention (the top-left corner of the top-left pixel is
``(0, 0)``), ours the pixel-centre one: ``+0.5`` is added on import (as hloc does), and a GT
principal point in our convention gets ``+0.5`` too.

Geometric verification: when the matches file holds RANSAC inliers (``inliers0``, written by
``selfdesc.pipeline.verify``), they become the database's two-view geometries directly;
otherwise :func:`verify_in_colmap` runs COLMAP's own verification (as hloc's reconstruction does).
Rigs and frames are left to COLMAP (one trivial rig per camera, one frame per image).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np

from selfdesc.errors import DatasetError
from selfdesc.pipeline.h5io import FeatureFile, open_h5, pair_matches
from selfdesc.pipeline.pairs import write_pairs

CAMERA_MODES = ("per-image", "single")
#: COLMAP's focal-length guess for images without EXIF: 1.2 x the longest side
DEFAULT_FOCAL_FACTOR = 1.2


@contextlib.contextmanager
def colmap_logging(verbose: bool = False) -> Iterator[None]:
    """Let COLMAP log at INFO level when ``verbose``, else warnings and errors only."""
    import pycolmap

    previous = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = 0 if verbose else 1
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = previous


def _camera(size: tuple[int, int], K: np.ndarray | None):
    import pycolmap

    W, H = int(size[0]), int(size[1])
    if K is None:
        f = DEFAULT_FOCAL_FACTOR * max(W, H)
        return pycolmap.Camera(model="SIMPLE_RADIAL", width=W, height=H, params=[f, W / 2, H / 2, 0.0])
    params = [K[0, 0], K[1, 1], K[0, 2] + 0.5, K[1, 2] + 0.5]
    return pycolmap.Camera(model="PINHOLE", width=W, height=H, params=params, has_prior_focal_length=True)


def create_database(
    path: str | Path,
    sizes: Mapping[str, tuple[int, int]],
    camera_mode: str = "per-image",
    intrinsics: Mapping[str, np.ndarray] | None = None,
) -> dict[str, int]:
    """Create an empty database (replacing ``path``) with one image per name.

    Args:
        path: the database file.
        sizes: image name (relative to the image folder) -> ``(W, H)``.
        camera_mode: ``"per-image"`` (a camera per image) or ``"single"`` (one shared camera;
            all images must have the same size).
        intrinsics: optional name -> ``3 x 3`` K (pixel-centre convention): a PINHOLE camera
            with a focal prior; otherwise SIMPLE_RADIAL with ``f = 1.2 max(W, H)``.

    Returns:
        image name -> COLMAP image id.
    """
    import pycolmap

    if camera_mode not in CAMERA_MODES:
        raise DatasetError(f"unknown camera mode '{camera_mode}' (known: {', '.join(CAMERA_MODES)})")
    if camera_mode == "single" and len({tuple(s) for s in sizes.values()}) > 1:
        raise DatasetError(f"{path}: camera mode 'single' needs images of one size, got {len({tuple(s) for s in sizes.values()})} sizes")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    ids: dict[str, int] = {}
    shared: int | None = None
    with pycolmap.Database.open(path) as db:
        for name, size in sizes.items():
            K = None if intrinsics is None else intrinsics[name]
            if camera_mode == "per-image" or shared is None:
                cam_id = db.write_camera(_camera(size, K))
                shared = cam_id
            ids[name] = db.write_image(pycolmap.Image(name=name, camera_id=shared))
    return ids


def import_features(database: str | Path, image_ids: Mapping[str, int], features: str | Path) -> int:
    """Write the keypoints of every image (``+0.5``: COLMAP corner convention).

    Returns:
        the number of keypoints written.
    """
    import pycolmap

    total = 0
    with FeatureFile(features) as ff, pycolmap.Database.open(database) as db:
        for name, image_id in image_ids.items():
            kpts = ff.read(name, descriptors=False)["keypoints"] + 0.5
            db.write_keypoints(image_id, np.ascontiguousarray(kpts, np.float32))
            total += len(kpts)
    return total


def import_matches(
    database: str | Path,
    image_ids: Mapping[str, int],
    pairs: Sequence[tuple[str, str]],
    matches: str | Path,
    min_score: float | None = None,
) -> dict[str, int]:
    """Write the putative matches of every pair, and its inliers when the file has them.

    Args:
        pairs: ``(name0, name1)``; repeated or reversed pairs are imported once.
        min_score: optional lower bound on ``matching_scores0``.

    Returns:
        ``{"pairs": n, "matches": n, "verified_pairs": n}``; ``verified_pairs`` counts pairs
        whose inliers were imported as two-view geometries.
    """
    import pycolmap

    seen: set[frozenset[str]] = set()
    stats = {"pairs": 0, "matches": 0, "verified_pairs": 0}
    with open_h5(matches, "matches") as fd, pycolmap.Database.open(database) as db:
        for name0, name1 in pairs:
            if frozenset((name0, name1)) in seen or name0 == name1:
                continue
            seen.add(frozenset((name0, name1)))
            for name in (name0, name1):
                if name not in image_ids:
                    raise DatasetError(f"{matches}: pair '{name0} {name1}' names an image without features: {name}")
            m, scores, inliers = pair_matches(fd, name0, name1)
            if min_score is not None:
                keep = scores >= min_score
                m, inliers = m[keep], (None if inliers is None else inliers[keep])
            id0, id1 = image_ids[name0], image_ids[name1]
            db.write_matches(id0, id1, np.ascontiguousarray(m, np.uint32))
            stats["pairs"] += 1
            stats["matches"] += len(m)
            if inliers is not None:
                geometry = pycolmap.TwoViewGeometry(
                    config=pycolmap.TwoViewGeometryConfiguration.UNCALIBRATED,
                    inlier_matches=np.ascontiguousarray(m[inliers], np.uint32),
                )
                db.write_two_view_geometry(id0, id1, geometry)
                stats["verified_pairs"] += 1
    return stats


def verify_in_colmap(
    database: str | Path, pairs: Sequence[tuple[str, str]], max_num_trials: int = 10000, min_inlier_ratio: float = 0.1, verbose: bool = False
) -> int:
    """COLMAP's geometric verification of the imported matches (E / F / H, RANSAC).

    Returns:
        the number of pairs with a verified geometry.
    """
    import pycolmap

    database = Path(database)
    pairs_file = write_pairs(database.with_suffix(".pairs.txt"), list(pairs))
    options = pycolmap.TwoViewGeometryOptions()
    options.ransac.max_num_trials = max_num_trials
    options.ransac.min_inlier_ratio = min_inlier_ratio
    options.ransac.random_seed = 0
    with colmap_logging(verbose):
        pycolmap.verify_matches(database, pairs_file, options)
    pairs_file.unlink()
    with pycolmap.Database.open(database) as db:
        return int(db.num_verified_image_pairs())


def database_stats(database: str | Path) -> dict[str, int]:
    """Counts: images, keypoints, matched pairs, matches, verified pairs, inlier matches."""
    import pycolmap

    with pycolmap.Database.open(database) as db:
        return {
            "images": int(db.num_images()),
            "keypoints": int(db.num_keypoints()),
            "matched_pairs": int(db.num_matched_image_pairs()),
            "matches": int(db.num_matches()),
            "verified_pairs": int(db.num_verified_image_pairs()),
            "inlier_matches": int(db.num_inlier_matches()),
        }
