"""Images -> COLMAP model: extract -> pairs -> match -> database -> verify -> incremental mapping.

Everything goes into one output folder::

    <out>/features.h5  pairs.txt  matches.h5     (hloc formats, see selfdesc.pipeline)
    <out>/database.db                            (COLMAP database)
    <out>/models/<k>/  <out>/sfm/                (all models / the largest one)
    <out>/summary.json                           (settings, counts, timings, summary)
    <out>/sfm.png                                (top-down view, see selfdesc.viz.sfm)

Extraction and matching are resumable (selfdesc.pipeline); the database and models are rebuilt
on every run. Matches are verified by COLMAP (``verify_in_colmap``) unless the matches file
already holds RANSAC inliers.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from selfdesc.errors import ConfigError
from selfdesc.eval.extraction import ExtractorSettings
from selfdesc.io.atomic import write_text_atomic
from selfdesc.pipeline.extract import ExtractConfig, extract_features, image_names
from selfdesc.pipeline.h5io import FeatureFile
from selfdesc.pipeline.match import MatchConfig, match_pairs
from selfdesc.pipeline.pairs import make_pairs, write_pairs
from selfdesc.sfm.colmap_db import create_database, database_stats, import_features, import_matches, verify_in_colmap
from selfdesc.sfm.reconstruct import camera_centres, camera_up, points, run_incremental_mapping, summarize, summary_line

PAIR_MODES = ("exhaustive", "sequential")
VERIFY_MODES = ("colmap", "fundamental", "homography")


@dataclass
class SfMConfig(ExtractorSettings):
    """Settings of :func:`reconstruct_images`: the extractor settings (at most 8192 keypoints by
    default; ``resize_max``: extraction resolution, keypoints stay in original pixels) plus:

    ``window``: neighbours per image for ``pairs="sequential"``. ``camera_mode``: ``per-image`` or
    ``single``. ``verify``: ``colmap`` (COLMAP's own verification in the database) or a RANSAC
    model of :mod:`selfdesc.pipeline.verify` (``fundamental``, ``homography``) whose inliers
    are imported as they are. ``min_num_matches``: fewest verified matches for a pair to be used by the mapper.
    ``matcher``: a trained matcher (shipped name or file) instead of mutual nearest neighbours.
    """

    max_keypoints: int | None = 8192
    pairs: str = "exhaustive"
    window: int = 10
    camera_mode: str = "per-image"
    verify: str = "fundamental"
    min_num_matches: int = 15
    matcher: str | None = None
    num_workers: int = 2
    progress: bool = True
    verbose: bool = False
    plot: bool = True


def reconstruct_images(
    image_dir: str | Path,
    feature: str,
    out: str | Path,
    config: SfMConfig | None = None,
    intrinsics: Mapping[str, np.ndarray] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Run the whole SfM pipeline on a folder of images.

    Args:
        image_dir: the images (found recursively; names are paths relative to it).
        feature: a registered feature name.
        out: output folder (layout in the module docstring).
        intrinsics: optional image name -> GT ``K`` (pixel-centre convention).

    Returns:
        the largest ``pycolmap.Reconstruction`` (``None`` when nothing was reconstructed) and
        the summary dict also written to ``<out>/summary.json``.
    """
    config = config or SfMConfig()
    if config.pairs not in PAIR_MODES:
        raise ConfigError(f"unknown --pairs '{config.pairs}' (known: {', '.join(PAIR_MODES)})")
    if config.verify not in VERIFY_MODES:
        raise ConfigError(f"unknown --verify '{config.verify}' (known: {', '.join(VERIFY_MODES)})")
    image_dir, out = Path(image_dir), Path(out)
    names = image_names(image_dir)
    timings: dict[str, float] = {}

    t = time.time()
    extractor = config.load(feature)
    extract_cfg = ExtractConfig(resize_max=config.resize_max, num_workers=config.num_workers, progress=config.progress)
    extract_features(extractor, feature, image_dir, out / "features.h5", extract_cfg, names=names).raise_failed(out / "features.h5")
    timings["extract"] = time.time() - t

    t = time.time()
    pairs = make_pairs(names, config.pairs, window=config.window)
    write_pairs(out / "pairs.txt", pairs)
    match_cfg = MatchConfig(matcher=config.matcher, verify="none" if config.verify == "colmap" else config.verify, progress=config.progress)
    match_pairs(out / "features.h5", pairs, out / "matches.h5", match_cfg, device=config.device)
    timings["match"] = time.time() - t

    t = time.time()
    with FeatureFile(out / "features.h5") as ff:
        sizes = {n: tuple(int(v) for v in ff.read(n, descriptors=False)["image_size"]) for n in names}
    database = out / "database.db"
    ids = create_database(database, sizes, config.camera_mode, intrinsics)
    import_features(database, ids, out / "features.h5")
    imported = import_matches(database, ids, pairs, out / "matches.h5")
    if imported["verified_pairs"] < imported["pairs"]:
        verify_in_colmap(database, pairs, verbose=config.verbose)
    timings["database"] = time.time() - t

    t = time.time()
    rec = run_incremental_mapping(database, image_dir, out, min_num_matches=config.min_num_matches, verbose=config.verbose)
    timings["mapping"] = time.time() - t

    summary = summarize(rec, len(names))
    record = {
        "images": str(image_dir),
        "features": feature,
        "config": asdict(config),
        "database": database_stats(database),
        "summary": summary,
        "seconds": timings,
    }
    write_text_atomic(out / "summary.json", json.dumps(record, indent=2) + "\n")
    if config.plot and rec is not None:
        from selfdesc.viz.sfm import plot_sfm_topdown

        centres = camera_centres(rec)
        plot_sfm_topdown(
            out / "sfm.png", points(rec), {"reconstructed cameras": np.stack(list(centres.values()))}, camera_up(rec), title=f"{image_dir.name} — {feature}"
        )
    return rec, record


def evaluate_scene(scene: Any, feature: str, out: str | Path, config: SfMConfig | None = None) -> dict[str, Any]:
    """Reconstruct a scene with GT cameras (:class:`~selfdesc.datasets.strecha.StrechaScene`) and
    measure it: the SfM summary plus camera-centre accuracy after similarity alignment
    (:func:`~selfdesc.sfm.align.centre_accuracy`); writes ``<out>/sfm.png`` with GT and
    aligned centres.

    Returns:
        ``{"summary": {...}, "registered_fraction", "median_centre_error", "max_centre_error",
        "centre_errors": {name: e}, "seconds": {...}}`` (errors in GT units, ``None`` below 3
        registered images).
    """
    from selfdesc.sfm.align import centre_accuracy
    from selfdesc.viz.sfm import plot_sfm_topdown

    config = config or SfMConfig()
    out = Path(out)
    rec, record = reconstruct_images(scene.root / "images", feature, out, replace(config, plot=False))
    gt = {name: cam.C for name, cam in scene.cameras.items()}
    acc = centre_accuracy(camera_centres(rec) if rec is not None else {}, gt)
    result = {
        "summary": record["summary"],
        "registered_fraction": acc["fraction_registered"],
        "median_centre_error": acc["median_error"],
        "max_centre_error": acc["max_error"],
        "centre_errors": acc["errors"],
        "seconds": record["seconds"],
    }
    if config.plot:
        up = np.mean([-cam.R[:, 1] for cam in scene.cameras.values()], axis=0)
        centres = {"ground truth": np.stack(list(gt.values()))}
        pts = np.zeros((0, 3))
        if acc["similarity"] is not None:
            sim = acc["similarity"]
            centres["reconstructed (aligned)"] = sim.apply(np.stack([camera_centres(rec)[n] for n in acc["errors"]]))
            pts = sim.apply(points(rec))
        title = f"{scene.name} — {feature}: {acc['num_registered']}/{acc['num_images']} registered"
        if acc["median_error"] is not None:
            title += f", median centre error {acc['median_error']:.3f}"
        plot_sfm_topdown(out / "sfm.png", pts, centres, up, title=title)
    return result


def evaluate_scenes(features: Sequence[str], scenes: Sequence[Any], out: str | Path, config: SfMConfig) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_scene` for every feature on every scene (into ``<out>/<feature>/<scene>``),
    printing one line per reconstruction; returns ``{feature: {scene name: result}}``."""
    results: dict[str, dict[str, Any]] = {}
    for name in features:
        results[name] = {}
        for scene in scenes:
            r = evaluate_scene(scene, name, Path(out) / name / scene.name, config)
            results[name][scene.name] = r
            med = "n/a" if r["median_centre_error"] is None else f"{r['median_centre_error']:.4f}"
            mx = "n/a" if r["max_centre_error"] is None else f"{r['max_centre_error']:.4f}"
            print(f"{name} {scene.name}: {summary_line(r['summary'])}; centre error median {med}, max {mx}")
    return results
