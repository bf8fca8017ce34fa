import math

import numpy as np
import pytest

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.eval.superpoint_protocol import (
    SuperPointProtocolConfig,
    aggregate,
    evaluate_pair,
    evaluate_superpoint_protocol,
    keep_shared_points,
    matching_score,
    repeatability,
    superpoint_markdown,
)
from selfdesc.geometry.homography import scale_homography, warp_points
from selfdesc.io.image import load_image

SIZE = (100, 100)


def _grid_points() -> np.ndarray:
    """49 points 10 px apart, well inside a 100 x 100 image."""
    xs, ys = np.meshgrid(np.arange(10, 80, 10), np.arange(10, 80, 10))
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)


def _random_descriptors(n: int, seed: int = 0) -> np.ndarray:
    d = np.random.default_rng(seed).normal(size=(n, 64)).astype(np.float32)
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _feats(kpts: np.ndarray, desc: np.ndarray) -> dict[str, np.ndarray]:
    return {"keypoints": kpts, "scores": np.linspace(1, 0, len(kpts)), "descriptors": desc}


def test_identical_points_identity_homography():
    rng = np.random.default_rng(0)
    kpts = rng.uniform(0, [639, 479], (60, 2))
    desc = _random_descriptors(60)
    cfg = SuperPointProtocolConfig()
    out = evaluate_pair(_feats(kpts, desc), _feats(kpts, desc), np.eye(3), cfg)
    assert out["repeatability"] == 1.0
    assert out["matching_score"] == 1.0
    assert out["localization_error"] == 0.0
    assert out["corner_error"] < 1e-6
    assert out["correct"] == {"1": True, "3": True, "5": True}
    assert out["num_matches"] == out["num_inliers"] == out["num_points0"] == 60


def test_shift_by_two_pixels_threshold_dependence():
    k0 = _grid_points()
    k1 = k0 + [2.0, 0.0]
    rep3, loc3, n0, n1 = repeatability(k0, k1, np.eye(3), SIZE, SIZE, threshold=3.0)
    assert (rep3, n0, n1) == (1.0, 49, 49)
    assert loc3 == pytest.approx(2.0)
    rep1, loc1, _, _ = repeatability(k0, k1, np.eye(3), SIZE, SIZE, threshold=1.0)
    assert rep1 == 0.0 and math.isnan(loc1)
    # the same shift is exact under the matching homography
    shift = np.array([[1, 0, 2], [0, 1, 0], [0, 0, 1]], float)
    assert repeatability(k0, k1, shift, SIZE, SIZE, threshold=0.1)[0] == 1.0

    desc = _random_descriptors(len(k0))
    assert matching_score(k0, desc, k1, desc, np.eye(3), SIZE, SIZE, threshold=3.0) == 1.0
    assert matching_score(k0, desc, k1, desc, np.eye(3), SIZE, SIZE, threshold=1.0) == 0.0
    # wrong nearest neighbours (descriptors permuted) score 0 even at a loose threshold
    perm = np.roll(np.arange(len(k0)), 1)
    assert matching_score(k0, desc, k1, desc[perm], np.eye(3), SIZE, SIZE, threshold=3.0) == 0.0


def test_repeatability_counts_only_visible_points():
    k0 = np.array([[10.0, 10.0], [50.0, 50.0], [95.0, 50.0]])  # the last one leaves image 1
    k1 = np.array([[40.0, 10.0], [5.0, 90.0]])  # the second one is not visible from image 0
    H = np.array([[1, 0, 30], [0, 1, 0], [0, 0, 1]], float)
    rep, _, n0, n1 = repeatability(k0, k1, H, SIZE, SIZE)
    assert (n0, n1) == (2, 1)
    assert rep == pytest.approx((1 + 1) / 3)
    assert repeatability(k0[:0], k1, H, SIZE, SIZE)[0] == 0.0


def test_keep_shared_points_hand_made():
    H = np.array([[1, 0, 30], [0, 1, 0], [0, 0, 1]], float)  # shift right by 30 px
    kpts = np.array([[10, 10], [80, 50], [69.9, 5], [70, 5], [20, 99], [20, 100], [-1, 3]], float)
    scores = np.array([0.1, 0.9, 0.5, 0.8, 0.7, 0.95, 0.6])
    # out after the warp: (80,50)->x=110, (70,5)->x=100 (x < W is strict), (20,100) has y=100
    assert keep_shared_points(kpts, scores, H, SIZE, None).tolist() == [4, 6, 2, 0]
    assert keep_shared_points(kpts, scores, H, SIZE, 2).tolist() == [4, 6]
    # the other direction: warped by H^-1, only x >= 30 survives
    assert keep_shared_points(kpts, scores, np.linalg.inv(H), SIZE, None).tolist() == [1, 3, 2]


def test_too_few_matches_is_incorrect():
    k = _grid_points()[:3]
    desc = _random_descriptors(3)
    out = evaluate_pair(_feats(k, desc), _feats(k, desc), np.eye(3), SuperPointProtocolConfig(size=SIZE))
    assert out["num_matches"] == 3
    assert out["corner_error"] == math.inf
    assert not any(out["correct"].values())


def test_resized_homography_is_consistent(graf_root):
    seq = graf_root / "v_graffiti"
    H = np.loadtxt(seq / "H_1_3")
    a = load_image(seq / "1.ppm", size=(640, 480))
    b = load_image(seq / "3.ppm", size=(640, 480))
    H_small = scale_homography(H, a.scale, b.scale)
    rng = np.random.default_rng(3)
    p_orig = rng.uniform(100, 500, (30, 2))
    q_orig = warp_points(H, p_orig)
    p_small = (p_orig + 0.5) / np.array(a.scale) - 0.5
    q_small = (q_orig + 0.5) / np.array(b.scale) - 0.5
    np.testing.assert_allclose(warp_points(H_small, p_small), q_small, atol=1e-8)
    rep, loc, n0, _ = repeatability(p_small, q_small, H_small, (640, 480), (640, 480), threshold=1e-6)
    assert rep == 1.0 and n0 == 30


def test_aggregate_is_pair_weighted():
    def rec(correct, ms):
        return {"correct": {"3": correct}, "matching_score": ms, "repeatability": ms, "localization_error": math.nan,
                "num_points0": 10, "num_points1": 20, "num_matches": 5}

    out = aggregate([rec(True, 1.0), rec(False, 0.0), rec(False, 0.5)], (3.0,))
    assert out["homography_correct"] == {"3": pytest.approx(1 / 3)}
    assert out["matching_score"] == pytest.approx(0.5)
    assert out["localization_error"] is None
    assert (out["num_pairs"], out["num_points"]) == (3, 15.0)


def test_presets_and_config_errors():
    cfg = SuperPointProtocolConfig.preset("240x320")
    assert (cfg.size, cfg.num_points, cfg.resolution) == ((320, 240), 300, "320x240")
    assert SuperPointProtocolConfig.preset("480x640").as_dict()["resize"] == "aspect not preserved"
    with pytest.raises(ConfigError, match="unknown superpoint protocol preset '1x1'"):
        SuperPointProtocolConfig.preset("1x1")
    with pytest.raises(ConfigError, match="size"):
        SuperPointProtocolConfig(size=(0, 480))
    with pytest.raises(DatasetError, match="no pairs"):
        evaluate_superpoint_protocol(None, [], cfg)


def test_sift_on_graf_end_to_end(graf_root):
    features = pytest.importorskip("selfdesc.features")
    from selfdesc.datasets.hpatches import load_hpatches

    pairs = load_hpatches(graf_root)
    assert len(pairs) == 5
    extractor = features.load_extractor("sift")
    res = evaluate_superpoint_protocol(extractor, pairs, SuperPointProtocolConfig.preset("480x640"), progress=False)
    assert set(res) == {"overall", "v", "config", "pairs"}
    overall = res["overall"]
    assert overall["num_pairs"] == 5 and res["v"] == overall
    for value in [*overall["homography_correct"].values(), overall["matching_score"], overall["repeatability"]]:
        assert 0.0 <= value <= 1.0
    easy = res["pairs"]["v_graffiti/1-2"]
    assert easy["correct"]["5"] and easy["repeatability"] > 0.3 and easy["matching_score"] > 0.1
    # the hardest viewpoint change scores lower than the easiest
    assert res["pairs"]["v_graffiti/1-6"]["matching_score"] < easy["matching_score"]
    assert res["config"]["resolution"] == "640x480" and res["config"]["feature"] == "sift"

    table = superpoint_markdown({"sift": {"480x640": res}})
    assert "| sift | 480x640 | 640x480, aspect not preserved | 1000 |" in table
    assert f"{overall['repeatability']:.3f}" in table
    assert "Cor-1 | Cor-3 | Cor-5 | MS | Rep" in table
