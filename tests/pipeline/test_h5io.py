"""HDF5 features / matches: round trips, hloc naming, resumable parts, and refusals."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.pipeline.h5io import (
    FEATURES_FORMAT,
    MATCHES_FORMAT,
    FeatureFile,
    PartedWriter,
    feature_group,
    names_to_pair,
    read_matches,
)


def _pred(n, d=8, seed=0):
    rng = np.random.default_rng(seed)
    desc = rng.normal(size=(n, d)).astype(np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    return {"keypoints": rng.uniform(0, 100, (n, 2)).astype(np.float32), "scores": rng.uniform(size=n).astype(np.float32), "descriptors": desc}


def test_names_to_pair_is_hloc_convention():
    assert names_to_pair("a.jpg", "b.jpg") == "a.jpg/b.jpg"
    assert names_to_pair("seq/a.jpg", "seq/b.jpg") == "seq-a.jpg/seq-b.jpg"


@pytest.mark.parametrize("fp16", [False, True])
def test_features_round_trip(tmp_path, fp16):
    out = tmp_path / "f.h5"
    preds = {"a.png": _pred(5), "sub/b.png": _pred(0, seed=1), "sub/deeper/c.png": _pred(7, seed=2)}
    w = PartedWriter(out, FEATURES_FORMAT, "keypoints", {"features": "x"}, {"features": "x"})
    for name, p in preds.items():
        w.add(name, feature_group(p, (640, 480), fp16=fp16))
    assert w.finalize() and not w.parts_dir.exists()
    with FeatureFile(out) as ff:
        assert ff.names == sorted(preds)
        assert ff.attrs["format"] == FEATURES_FORMAT and ff.attrs["features"] == "x"
        for name, p in preds.items():
            got = ff.read(name)
            np.testing.assert_array_equal(got["keypoints"], p["keypoints"])
            np.testing.assert_array_equal(got["scores"], p["scores"])
            np.testing.assert_allclose(got["descriptors"], p["descriptors"], atol=1e-3 if fp16 else 0)
            assert got["descriptors"].shape == p["descriptors"].shape and got["image_size"].tolist() == [640, 480]
    with h5py.File(out) as fd:  # the hloc layout on disk
        assert fd["a.png/descriptors"].shape == (8, 5)
        assert fd["a.png/descriptors"].dtype == (np.float16 if fp16 else np.float32)
        assert fd["a.png/keypoints"].dtype == np.float32


def test_parts_survive_a_crash_and_resume_without_duplicates(tmp_path):
    out = tmp_path / "f.h5"
    sig = {"features": "x"}
    w = PartedWriter(out, FEATURES_FORMAT, "keypoints", sig, checkpoint_every=2)
    for i in range(5):
        w.add(f"i{i}", feature_group(_pred(3, seed=i), (10, 10)))
    # "killed": the part in progress (1 item) is a temporary file, never finished
    assert len(list(w.parts_dir.glob("part-*.h5"))) == 2 and len(list(w.parts_dir.glob("*.tmp"))) == 1
    assert not out.exists()
    w2 = PartedWriter(out, FEATURES_FORMAT, "keypoints", sig, checkpoint_every=2)
    assert w2.done == {"i0", "i1", "i2", "i3"} and not list(w2.parts_dir.glob("*.tmp"))
    for i in range(6):
        w2.add(f"i{i}", feature_group(_pred(3, seed=i), (10, 10)))  # done ones are skipped
    w2.finalize()
    with FeatureFile(out) as ff:
        assert ff.names == [f"i{i}" for i in range(6)]
        np.testing.assert_array_equal(ff.read("i4")["keypoints"], _pred(3, seed=4)["keypoints"])


def test_merge_keeps_existing_output_and_adds_parts(tmp_path):
    out = tmp_path / "f.h5"
    sig = {"features": "x"}
    w = PartedWriter(out, FEATURES_FORMAT, "keypoints", sig)
    w.add("a", feature_group(_pred(2), (10, 10)))
    w.finalize()
    w = PartedWriter(out, FEATURES_FORMAT, "keypoints", sig)
    assert w.done == {"a"}
    w.add("b", feature_group(_pred(2, seed=3), (10, 10)))
    assert w.finalize()
    assert FeatureFile(out).names == ["a", "b"]
    assert not PartedWriter(out, FEATURES_FORMAT, "keypoints", sig).finalize()  # nothing new: not rewritten


def test_other_settings_and_corrupt_files_are_refused(tmp_path):
    out = tmp_path / "f.h5"
    w = PartedWriter(out, FEATURES_FORMAT, "keypoints", {"features": "x"})
    w.add("a", feature_group(_pred(2), (10, 10)))
    w.finalize()
    with pytest.raises(ConfigError, match="other settings"):
        PartedWriter(out, FEATURES_FORMAT, "keypoints", {"features": "y"})
    with pytest.raises(DatasetError, match="format"):
        PartedWriter(out, MATCHES_FORMAT, "matches0", {"features": "x"})
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(DatasetError, match="bad.h5: not a readable HDF5"):
        FeatureFile(bad)
    with pytest.raises(DatasetError, match="no features for image 'zz'"):
        FeatureFile(out).read("zz")


def test_read_matches_either_order_and_inliers(tmp_path):
    out = tmp_path / "m.h5"
    w = PartedWriter(out, MATCHES_FORMAT, "matches0", {})
    m0 = np.array([2, -1, 0, 1], np.int32)
    w.add(names_to_pair("x/a", "b"), {"matches0": m0, "matching_scores0": np.array([0.9, 0, 0.8, 0.7], np.float32), "inliers0": np.array([1, 0, 0, 1], bool)})
    w.finalize()
    pairs, scores = read_matches(out, "x/a", "b", verified=False)
    assert pairs.tolist() == [[0, 2], [2, 0], [3, 1]] and scores.tolist() == pytest.approx([0.9, 0.8, 0.7])
    pairs, _ = read_matches(out, "b", "x/a")  # reversed order, inliers only
    assert pairs.tolist() == [[2, 0], [1, 3]]
    with pytest.raises(DatasetError, match="no matches for pair 'b c'"):
        read_matches(out, "b", "c")
