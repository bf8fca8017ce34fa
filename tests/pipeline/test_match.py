"""Pair matching into matches.h5: equals direct MNN, batching, verification, resume, clear errors, viz."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.matching import match_mnn
from selfdesc.pipeline.h5io import FeatureFile, read_matches
from selfdesc.pipeline.match import MatchConfig, match_pairs
from selfdesc.pipeline.pairs import exhaustive_pairs
from selfdesc.viz.matches import visualize_pairs

def test_matches_equal_direct_mnn_and_batching_agrees(sift_features, tmp_path):
    _, feats, names, _ = sift_features
    pairs = exhaustive_pairs(names)[:8]
    s1 = match_pairs(feats, pairs, tmp_path / "m1.h5", MatchConfig(ratio=0.9, progress=False))
    s3 = match_pairs(feats, pairs, tmp_path / "m3.h5", MatchConfig(ratio=0.9, batch_size=4, progress=False))
    assert s1.num_matched == s3.num_matched == 8 and s1.mean_inliers is None
    with FeatureFile(feats) as ff:
        for a, b in pairs:
            ref, ref_scores = match_mnn(ff.read(a)["descriptors"], ff.read(b)["descriptors"], ratio=0.9)
            for out in ("m1.h5", "m3.h5"):
                got, scores = read_matches(tmp_path / out, a, b)
                np.testing.assert_array_equal(got, ref)
                np.testing.assert_allclose(scores, ref_scores, atol=1e-5)


def test_verification_marks_homography_inliers(sift_features, tmp_path):
    root, feats, _, H_TRUE = sift_features
    pair = [("img000.png", "warped.png")]  # img000 is the unshifted astronaut photo
    out = tmp_path / "m.h5"
    s = match_pairs(feats, pair, out, MatchConfig(verify="homography", progress=False))
    all_m, _ = read_matches(out, *pair[0], verified=False)
    inl, _ = read_matches(out, *pair[0])
    assert s.mean_inliers == len(inl) and len(inl) > 50 and len(inl) <= len(all_m)
    with FeatureFile(feats) as ff:
        k0, k1 = ff.read("img000.png")["keypoints"], ff.read("warped.png")["keypoints"]
    h = np.c_[k0[inl[:, 0]], np.ones(len(inl))] @ H_TRUE.T
    err = np.linalg.norm(h[:, :2] / h[:, 2:] - k1[inl[:, 1]], axis=1)
    assert np.median(err) < 1.0
    png = visualize_pairs(feats, out, root, tmp_path / "viz", pair)[0]
    rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
    green = (rgb[..., 1] > 150) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)
    red = (rgb[..., 0] > 180) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    assert green.sum() > 100 and (len(inl) == len(all_m) or red.sum() > 0)


def test_resume_skips_pairs_in_either_order(sift_features, tmp_path):
    _, feats, names, _ = sift_features
    out = tmp_path / "m.h5"
    match_pairs(feats, exhaustive_pairs(names)[:4], out, MatchConfig(progress=False))
    s = match_pairs(feats, [(b, a) for a, b in exhaustive_pairs(names)], out, MatchConfig(progress=False))
    assert (s.num_pairs, s.num_skipped, s.num_matched) == (15, 4, 11)
    with pytest.raises(ConfigError, match="other settings"):
        match_pairs(feats, exhaustive_pairs(names), out, MatchConfig(ratio=0.8, progress=False))


def test_absent_image_names_the_pair_and_keeps_output(sift_features, tmp_path):
    _, feats, names, _ = sift_features
    out = tmp_path / "m.h5"
    match_pairs(feats, exhaustive_pairs(names)[:2], out, MatchConfig(progress=False))
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    bad = [*exhaustive_pairs(names)[2:5], (names[0], "ghost.png")]
    with pytest.raises(DatasetError, match=rf"pairs.txt: pair '{names[0]} ghost.png': image 'ghost.png' is not in"):
        match_pairs(feats, bad, out, MatchConfig(progress=False), source="pairs.txt")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
    assert not (tmp_path / ".m.h5.parts").exists()
