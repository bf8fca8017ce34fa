import numpy as np
import pytest

from selfdesc.errors import DatasetError
from selfdesc.eval.d2net_cache import read_d2net_cache, write_d2net_cache
from selfdesc.eval.mma import EvalAccumulator
from tests.conftest import shared_path

CACHES = "reference-results/hpatches-d2net-caches"

# anchors.md §B1: file, #feat/img, #matches/pair, overall @1/@3/@5, i@3, v@3
B1 = [
    ("aslfeat-repo__superpoint.npy", 1563, 883, (0.339, 0.645, 0.729), 0.694, 0.599),
    ("aslfeat-repo__hesaff.npy", 6710, 2852, (0.313, 0.562, 0.641), 0.514, 0.608),
    ("aslfeat-repo__hesaffnet.npy", 3861, 1960, (0.331, 0.616, 0.703), 0.609, 0.622),
    ("aslfeat-repo__aslfeatv2_ms.npy", 4337, 2092, (0.407, 0.753, 0.851), 0.778, 0.729),
    ("r2d2__r2d2_WASF_N16.scale-0.3-1.npy", 4959, 1635, (0.333, 0.758, 0.840), 0.808, 0.711),
    ("r2d2__r2d2_WAF_N16.size-256-1024.npy", 4990, 1846, (0.274, 0.687, 0.799), 0.715, 0.661),
    ("disk__disk-imsize-1024-nms-3-nump-2048.npy", 2048, 1024, (0.415, 0.753, 0.813), 0.794, 0.715),
    ("disk__disk-imsize-1024-nms-3-nump-8000.npy", 7705, 3852, (0.380, 0.774, 0.847), 0.823, 0.728),
    ("alike__disk.npy", 4463, 2283, (0.437, 0.776, 0.848), 0.826, 0.729),
    ("alike__alike-n.npy", 2758, 1280, (0.435, 0.708, 0.773), 0.751, 0.668),
    ("alike__alike-l-ms.npy", 3582, 1575, (0.450, 0.745, 0.806), 0.774, 0.718),
]

# anchors.md §B2 (full-resolution MHA, ALIKE caches): file, all / i / v at 1/3/5 px
B2 = [
    ("alike__superpoint.npy", (0.350, 0.702, 0.835), (0.492, 0.888, 0.969), (0.218, 0.529, 0.711)),
    ("alike__alike-n.npy", (0.420, 0.757, 0.846), (0.615, 0.927, 0.981), (0.239, 0.600, 0.721)),
    ("alike__d2.npy", (0.052, 0.383, 0.626), (0.100, 0.588, 0.858), (0.007, 0.193, 0.411)),
]


@pytest.mark.parametrize("name, feats, matches, overall, i3, v3", B1, ids=[b[0] for b in B1])
def test_published_mma(name, feats, matches, overall, i3, v3):
    s = read_d2net_cache(shared_path(f"{CACHES}/{name}"), expect_official=True)
    assert [s["overall"]["mma"][k] for k in ("1", "3", "5")] == pytest.approx(overall, abs=5e-4)
    assert s["i"]["mma"]["3"] == pytest.approx(i3, abs=5e-4)
    assert s["v"]["mma"]["3"] == pytest.approx(v3, abs=5e-4)
    assert s["overall"]["num_features"] == pytest.approx(feats, abs=0.5 + 1e-9)
    assert s["overall"]["num_matches"] == pytest.approx(matches, abs=0.5 + 1e-9)
    assert [s[k]["num_pairs"] for k in ("overall", "i", "v")] == [540, 260, 280]


@pytest.mark.parametrize("name, all_, i, v", B2, ids=[b[0] for b in B2])
def test_published_homography_accuracy(name, all_, i, v):
    s = read_d2net_cache(shared_path(f"{CACHES}/{name}"))
    for split, expected in (("overall", all_), ("i", i), ("v", v)):
        got = [s[split]["homography_accuracy"][k] for k in ("1", "3", "5")]
        assert got == pytest.approx(expected, abs=5e-4)


def test_thresholds_missing_from_cache_are_left_out():
    s = read_d2net_cache(shared_path(f"{CACHES}/alike__alike-n.npy"))  # stores 1..5 px only
    assert list(s["overall"]["mma"]) == ["1", "2", "3", "4", "5"]
    assert list(s["overall"]["homography_accuracy"]) == ["1", "3", "5"]
    assert "homography_accuracy" not in read_d2net_cache(shared_path(f"{CACHES}/aslfeat-repo__superpoint.npy"))["v"]


def _hpatches_like(with_ids=True, sequences=(("i", 2), ("v", 3))):
    """Sequences of 5 pairs sharing their reference image, random errors, one pair without matches."""
    rng = np.random.default_rng(0)
    acc = EvalAccumulator()
    seq = 0
    for split, count in sequences:
        for _ in range(count):
            seq += 1
            n_ref = int(rng.integers(100, 1000))
            for k in range(2, 7):
                n_matches = 0 if (seq, k) == (2, 4) else int(rng.integers(5, 60))
                errors = rng.exponential(4.0, n_matches)
                ids = (f"{split}_{seq}/1", f"{split}_{seq}/{k}") if with_ids else None
                acc.add_pair(
                    split, errors, (n_ref, int(rng.integers(100, 1000))),
                    homography_error=float(rng.exponential(4.0)), image_ids=ids,
                )
    return acc


def _drop_homography(summary):
    return {split: {k: v for k, v in entry.items() if k != "homography_accuracy"} for split, entry in summary.items()}


@pytest.mark.parametrize("with_ids", [True, False])
@pytest.mark.parametrize("with_homography", [True, False])
def test_round_trip(tmp_path, with_ids, with_homography):
    acc = _hpatches_like(with_ids)
    path = write_d2net_cache(tmp_path / "ours.npy", acc, with_homography=with_homography)
    expected = acc.summary() if with_homography else _drop_homography(acc.summary())
    got = read_d2net_cache(path)
    assert got.keys() == expected.keys()
    for split in expected:
        assert got[split].keys() == expected[split].keys()
        for key, value in expected[split].items():
            assert got[split][key] == pytest.approx(value, rel=1e-12), (split, key)
    assert list(tmp_path.iterdir()) == [path]


def test_written_cache_is_the_notebook_layout(tmp_path):
    acc = _hpatches_like()
    path = write_d2net_cache(tmp_path / "ours.npy", acc)
    i_err, v_err, (seq_type, n_feats, n_matches) = np.load(path, allow_pickle=True)  # as the D2-Net notebook
    assert sorted(i_err) == list(range(1, 16))
    assert len(seq_type) == 25 and len(n_matches) == 25 and len(n_feats) == 30
    mma3 = (i_err[3] + v_err[3]) / len(seq_type)
    assert mma3 == pytest.approx(acc.summary()["overall"]["mma"]["3"], rel=1e-12)


def test_official_split_check(tmp_path):
    path = write_d2net_cache(tmp_path / "ours.npy", _hpatches_like())
    with pytest.raises(DatasetError, match="official"):
        read_d2net_cache(path, expect_official=True)


def test_bad_files_and_splits(tmp_path):
    with pytest.raises(DatasetError, match="no such"):
        read_d2net_cache(tmp_path / "missing.npy")
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"not numpy")
    with pytest.raises(DatasetError, match="garbage.npy"):
        read_d2net_cache(garbage)
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.arange(3))
    with pytest.raises(DatasetError, match="not a D2-Net cache"):
        read_d2net_cache(wrong)
    acc = EvalAccumulator()
    acc.add_pair("overall", np.zeros(3), (3, 3))
    with pytest.raises(DatasetError, match="only 'i'/'v'"):
        write_d2net_cache(tmp_path / "x.npy", acc)
    assert not (tmp_path / "x.npy").exists()
