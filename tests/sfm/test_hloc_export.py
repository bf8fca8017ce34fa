from __future__ import annotations

import h5py
import numpy as np
import pytest

from selfdesc.errors import DatasetError
from selfdesc.pipeline.h5io import names_to_pair
from selfdesc.sfm.hloc_export import export_hloc, hloc_names


def test_export_uses_hloc_names_and_keeps_content(synthetic_scene, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for name in ("cameras.bin", "images.bin", "points3D.bin"):
        (model / name).write_bytes(b"x")
    out = export_hloc(
        tmp_path / "hloc", "sift", synthetic_scene["features"], synthetic_scene["matches"], synthetic_scene["pair_file"], "exhaustive", model=model
    )
    names = hloc_names("sift", "exhaustive")
    assert out["features"].name == "feats-sift.h5" == names["features"]
    assert out["matches"].name == "feats-sift_matches-NN-mutual_pairs-exhaustive.h5"
    assert out["pairs"].name == "pairs-exhaustive.txt"
    assert sorted(p.name for p in out["sfm"].iterdir()) == ["cameras.bin", "images.bin", "points3D.bin"]
    a, b = synthetic_scene["pairs"][0]
    with h5py.File(out["matches"]) as fd, h5py.File(synthetic_scene["matches"]) as ref:
        key = names_to_pair(a, b)
        assert key == "seq-img0.png/seq-img1.png"
        np.testing.assert_array_equal(fd[key]["matches0"], ref[key]["matches0"])


def test_export_rejects_matches_that_do_not_fit(synthetic_scene, tmp_path):
    a, b = synthetic_scene["pairs"][0]
    with h5py.File(synthetic_scene["matches"], "a") as fd:
        fd[names_to_pair(a, b)]["matches0"][0] = 999
    with pytest.raises(DatasetError, match="indexes keypoints"):
        export_hloc(tmp_path / "o", "sift", synthetic_scene["features"], synthetic_scene["matches"], synthetic_scene["pair_file"], "exhaustive")
    with pytest.raises(DatasetError, match="not a COLMAP binary model"):
        with h5py.File(synthetic_scene["matches"], "a") as fd:
            fd[names_to_pair(a, b)]["matches0"][0] = 0
        export_hloc(tmp_path / "o", "sift", synthetic_scene["features"], synthetic_scene["matches"], synthetic_scene["pair_file"], "exhaustive", model=tmp_path)
