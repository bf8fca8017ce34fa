from __future__ import annotations

import h5py
import numpy as np
import pytest

from selfdesc.errors import DatasetError
from selfdesc.pipeline.h5io import names_to_pair
from selfdesc.sfm.colmap_db import create_database, database_stats, import_features, import_matches, verify_in_colmap
from selfdesc.sfm.reconstruct import run_incremental_mapping, summarize

pycolmap = pytest.importorskip("pycolmap")


def _db(scene, tmp_path, **kw):
    db = tmp_path / "database.db"
    ids = create_database(db, {n: scene["size"] for n in scene["names"]}, **kw)
    import_features(db, ids, scene["features"])
    return db, ids


def test_keypoints_get_corner_convention(synthetic_scene, tmp_path):
    db, ids = _db(synthetic_scene, tmp_path)
    with h5py.File(synthetic_scene["features"]) as fd, pycolmap.Database.open(db) as d:
        for name, image_id in ids.items():
            ours = np.asarray(fd[name]["keypoints"])
            np.testing.assert_allclose(d.read_keypoints(image_id)[:, :2], ours + 0.5, atol=1e-4)
            assert d.read_image(image_id).name == name


def test_matches_import_verify_and_map(synthetic_scene, tmp_path):
    db, ids = _db(synthetic_scene, tmp_path, camera_mode="single")
    stats = import_matches(db, ids, synthetic_scene["pairs"] + [synthetic_scene["pairs"][0][::-1]], synthetic_scene["matches"])
    assert stats == {"pairs": 6, "matches": 6 * 300, "verified_pairs": 0}
    assert verify_in_colmap(db, synthetic_scene["pairs"]) == 6
    counts = database_stats(db)
    assert counts["images"] == 4 and counts["keypoints"] == 1200 and counts["matches"] == 1800
    # most of the 20 wrong matches per pair are rejected (one near its epipolar line passes), right ones kept
    assert 6 * 270 <= counts["inlier_matches"] <= 6 * 290
    rec = run_incremental_mapping(db, tmp_path, tmp_path / "out")
    summary = summarize(rec, 4)
    assert summary["registered"] == 4
    assert summary["points"] >= 250
    assert summary["reprojection_error"] < 1.0
    assert (tmp_path / "out" / "sfm" / "images.bin").is_file()


def test_stored_inliers_become_two_view_geometries(synthetic_scene, tmp_path):
    with h5py.File(synthetic_scene["matches"], "a") as fd:
        for a, b in synthetic_scene["pairs"]:
            g = fd[names_to_pair(a, b)]
            inl = np.zeros(300, bool)
            inl[:100] = True
            g["inliers0"] = inl
    db, ids = _db(synthetic_scene, tmp_path)
    stats = import_matches(db, ids, synthetic_scene["pairs"], synthetic_scene["matches"])
    assert stats["verified_pairs"] == 6
    assert database_stats(db)["inlier_matches"] == 600


def test_bad_inputs(synthetic_scene, tmp_path):
    with pytest.raises(DatasetError, match="one size"):
        create_database(tmp_path / "d.db", {"a.png": (10, 10), "b.png": (20, 10)}, camera_mode="single")
    db, ids = _db(synthetic_scene, tmp_path)
    with pytest.raises(DatasetError, match="without features"):
        import_matches(db, ids, [("seq/img0.png", "nope.png")], synthetic_scene["matches"])
    with pytest.raises(DatasetError, match="no such matches file"):
        import_matches(db, ids, synthetic_scene["pairs"], tmp_path / "missing.h5")
    ids2 = create_database(tmp_path / "e.db", {"other.png": (640, 480)})
    with pytest.raises(DatasetError, match="no features for image 'other.png'"):
        import_features(tmp_path / "e.db", ids2, synthetic_scene["features"])


def test_gt_intrinsics_shift_principal_point(tmp_path):
    K = np.array([[400.0, 0, 99.5], [0, 410.0, 79.5], [0, 0, 1]])
    db = tmp_path / "k.db"
    ids = create_database(db, {"a.png": (200, 160)}, intrinsics={"a.png": K})
    with pycolmap.Database.open(db) as d:
        cam = d.read_camera(d.read_image(ids["a.png"]).camera_id)
    assert cam.model_name == "PINHOLE"
    np.testing.assert_allclose(cam.params, [400, 410, 100, 80])
