"""``selfdesc pairs``: the three modes from a folder, a features file or a saved index."""
from __future__ import annotations

import numpy as np
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.pipeline.pairs import read_pairs
from selfdesc.retrieval import GlobalIndex


def _folder(root, count=4):
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return [f"{i}.png" for i in range(count)]


def test_exhaustive_and_sequential_from_folder(tmp_path, capsys):
    names = _folder(tmp_path / "img")
    assert main(["pairs", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "ex.txt"), "--mode", "exhaustive"]) == 0
    assert len(read_pairs(tmp_path / "ex.txt")) == 6
    assert main(["pairs", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "seq.txt"), "--mode", "sequential", "--window", "1"]) == 0
    assert read_pairs(tmp_path / "seq.txt") == list(zip(names[:-1], names[1:]))
    assert "3 pairs of 4 images (sequential)" in capsys.readouterr().out


def test_retrieval_from_saved_index_and_errors(tmp_path, capsys):
    names = _folder(tmp_path / "img")
    desc = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    desc /= np.linalg.norm(desc, axis=1, keepdims=True)
    GlobalIndex(names=names, descriptors=desc).save(tmp_path / "index.npz")
    args = ["pairs", "--images", str(tmp_path / "img"), "--out", str(tmp_path / "r.txt"), "--mode", "retrieval", "--num-neighbours", "1"]
    assert main([*args, "--index", str(tmp_path / "index.npz")]) == 0
    assert read_pairs(tmp_path / "r.txt") == [("0.png", "1.png"), ("2.png", "3.png")]
    capsys.readouterr()
    assert main(["pairs", "--features", str(tmp_path / "none.h5"), "--out", str(tmp_path / "x.txt"), "--mode", "exhaustive"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"selfdesc: error: {tmp_path / 'none.h5'}: no such features file"]
    assert not (tmp_path / "x.txt").exists()
