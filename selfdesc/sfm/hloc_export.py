"""Export a selfdesc SfM run in the **hloc layout**, so hloc's localization pipelines accept it.

"hloc layout" = the file names and HDF5 structure hloc's scripts produce and read
(``hloc.extract_features``, ``hloc.match_features``, ``hloc.reconstruction``,
``hloc.localize_sfm``), all in one output folder::

    <out>/feats-<feature>.h5                               features (hloc ``feature_path``)
    <out>/pairs-<mode>.txt                                 "name0 name1" per line (``pairs_path``)
    <out>/feats-<feature>_matches-NN-mutual_pairs-<mode>.h5 matches (``match_path``)
    <out>/sfm_<feature>+NN-mutual/                         COLMAP model (``reference_sfm``):
        cameras.bin images.bin points3D.bin [rigs.bin frames.bin] database.db

Inside the HDF5 files (what hloc's ``utils.io.get_keypoints`` / ``get_matches`` read): one
features group per image name (the path relative to the image folder) with ``keypoints``
``(N, 2)`` (pixel-centre convention, hloc adds 0.5 when writing to COLMAP), ``scores`` ``(N,)``,
``descriptors`` ``(D, N)``, ``image_size`` ``(W, H)``; one matches group per pair named
``names_to_pair(name0, name1)`` (``/`` inside names -> ``-``, joined by ``/``) with ``matches0``
``(N0,)`` int (-1 = unmatched) and ``matching_scores0`` ``(N0,)``. Extra datasets (``inliers0``)
are ignored by hloc. The COLMAP model's image names are the same names, so a query localized
with hloc against ``sfm_*`` finds its 2D-3D matches through these files.
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Sequence

from selfdesc.errors import DatasetError
from selfdesc.io.atomic import atomic_path
from selfdesc.pipeline.h5io import FeatureFile, read_matches
from selfdesc.pipeline.pairs import read_pairs

MATCHER_NAME = "NN-mutual"
MODEL_FILES = ("cameras.bin", "images.bin", "points3D.bin", "rigs.bin", "frames.bin")


def hloc_names(feature: str, pairs_mode: str, matcher: str = MATCHER_NAME) -> dict[str, str]:
    """The hloc-layout file names of a run (keys ``features``, ``pairs``, ``matches``, ``sfm``)."""
    pairs = f"pairs-{pairs_mode}"
    return {
        "features": f"feats-{feature}.h5",
        "pairs": f"{pairs}.txt",
        "matches": f"feats-{feature}_matches-{matcher}_{pairs}.h5",
        "sfm": f"sfm_{feature}+{matcher}",
    }


def check_hloc_files(features: str | Path, matches: str | Path, pairs: Sequence[tuple[str, str]]) -> None:
    """Check what hloc reads: every paired image has ``keypoints``/``descriptors``/``image_size``
    and every pair has ``matches0`` whose indices fit the keypoints.

    Raises:
        DatasetError: naming the file and the first image or pair that does not fit.
    """
    with FeatureFile(features) as ff:
        sizes = {}
        for name in sorted({n for p in pairs for n in p}):
            f = ff.read(name)
            if f["keypoints"].ndim != 2 or f["keypoints"].shape[1] != 2 or f["descriptors"].shape[0] != len(f["keypoints"]):
                raise DatasetError(f"{features}: image '{name}' has keypoints {f['keypoints'].shape} and descriptors {f['descriptors'].shape}, not (N, 2) and (D, N)")
            sizes[name] = len(f["keypoints"])
    for name0, name1 in pairs:
        m, _ = read_matches(matches, name0, name1, verified=False)
        if len(m) and (m[:, 0].max() >= sizes[name0] or m[:, 1].max() >= sizes[name1]):
            raise DatasetError(f"{matches}: pair '{name0} {name1}' indexes keypoints that {features} does not have")


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def export_hloc(
    out: str | Path,
    feature: str,
    features: str | Path,
    matches: str | Path,
    pairs: str | Path,
    pairs_mode: str,
    model: str | Path | None = None,
    database: str | Path | None = None,
    matcher: str = MATCHER_NAME,
) -> dict[str, Path]:
    """Copy a run's files into ``out`` under hloc names (module docstring), after checking them.

    Args:
        features, matches, pairs: the run's features.h5, matches.h5 and pair file.
        pairs_mode: how the pairs were made (``exhaustive``, ``sequential``, ...), used in names.
        model: optional COLMAP model folder (``cameras.bin``...); database: optional database.db.
        matcher: the matcher's name in the file names (default ``NN-mutual``).

    Returns:
        the written paths by key (``features``, ``pairs``, ``matches`` and ``sfm`` with a model).
    """
    out = Path(out)
    pair_list = read_pairs(pairs)
    if not pair_list:
        raise DatasetError(f"{pairs}: no pairs")
    check_hloc_files(features, matches, pair_list)
    names = hloc_names(feature, pairs_mode, matcher)
    written = {key: out / names[key] for key in ("features", "pairs", "matches")}
    _copy(Path(features), written["features"])
    _copy(Path(pairs), written["pairs"])
    _copy(Path(matches), written["matches"])
    if model is not None:
        model = Path(model)
        if not (model / "images.bin").is_file():
            raise DatasetError(f"{model}: not a COLMAP binary model (no images.bin)")
        sfm = out / names["sfm"]
        sfm.mkdir(parents=True, exist_ok=True)
        for name in MODEL_FILES:
            if (model / name).is_file():
                _copy(model / name, sfm / name)
        if database is not None:
            _copy(Path(database), sfm / "database.db")
        written["sfm"] = sfm
    return written
