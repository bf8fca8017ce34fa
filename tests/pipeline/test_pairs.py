"""Pair lists: exhaustive / sequential / retrieval, file round trip, malformed lines."""
from __future__ import annotations

import numpy as np
import pytest

from selfdesc.errors import ConfigError, DatasetError
from selfdesc.pipeline.pairs import make_pairs, read_pairs, unique_pairs, write_pairs
from selfdesc.retrieval import GlobalIndex

NAMES = [f"{i}.jpg" for i in range(6)]


def test_exhaustive_and_sequential():
    ex = make_pairs(NAMES, "exhaustive")
    assert len(ex) == 15 and len({frozenset(p) for p in ex}) == 15
    seq = make_pairs(NAMES, "sequential", window=2)
    assert seq == [("0.jpg", "1.jpg"), ("0.jpg", "2.jpg"), ("1.jpg", "2.jpg"), ("1.jpg", "3.jpg"), ("2.jpg", "3.jpg"), ("2.jpg", "4.jpg"), ("3.jpg", "4.jpg"), ("3.jpg", "5.jpg"), ("4.jpg", "5.jpg")]
    with pytest.raises(ConfigError, match="--window"):
        make_pairs(NAMES, "sequential", window=0)


def test_retrieval_pairs_follow_the_index():
    # two clusters of 3 images each: neighbours stay inside a cluster
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:2]
    desc = np.concatenate([centres[0] + 0.05 * rng.normal(size=(3, 8)), centres[1] + 0.05 * rng.normal(size=(3, 8))])
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    index = GlobalIndex(names=NAMES, descriptors=desc.astype(np.float32))
    pairs = make_pairs(NAMES, "retrieval", num_neighbours=2, index=index)
    assert {frozenset(p) for p in pairs} == {frozenset(p) for p in [("0.jpg", "1.jpg"), ("0.jpg", "2.jpg"), ("1.jpg", "2.jpg"), ("3.jpg", "4.jpg"), ("3.jpg", "5.jpg"), ("4.jpg", "5.jpg")]}
    assert len(pairs) == 6  # each unordered pair once
    # images without features are left out; images without an index entry are an error
    assert all("5.jpg" not in p for p in make_pairs(NAMES[:5], "retrieval", num_neighbours=2, index=index))
    with pytest.raises(DatasetError, match="no entry"):
        make_pairs([*NAMES, "new.jpg"], "retrieval", num_neighbours=2, index=index)
    with pytest.raises(ConfigError, match="needs a global index"):
        make_pairs(NAMES, "retrieval")


def test_pair_file_round_trip_and_errors(tmp_path):
    pairs = unique_pairs([("a/x.jpg", "b.jpg"), ("b.jpg", "a/x.jpg"), ("c.jpg", "c.jpg"), ("c.jpg", "b.jpg")])
    assert pairs == [("a/x.jpg", "b.jpg"), ("c.jpg", "b.jpg")]
    path = write_pairs(tmp_path / "p.txt", pairs)
    assert read_pairs(path) == pairs
    (tmp_path / "q.txt").write_text("# comment\na.jpg b.jpg extra columns\n\nlonely.jpg\n")
    with pytest.raises(DatasetError, match=r"q.txt:4: expected 'name0 name1'"):
        read_pairs(tmp_path / "q.txt")
    with pytest.raises(DatasetError, match="whitespace"):
        write_pairs(tmp_path / "r.txt", [("a b.jpg", "c.jpg")])
    with pytest.raises(DatasetError, match="no such pair file"):
        read_pairs(tmp_path / "missing.txt")
