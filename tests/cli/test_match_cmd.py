"""``selfdesc match``: verified matches with viz, and a pair naming an absent image."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.pipeline.h5io import FeatureFile, read_matches


@pytest.fixture
def features(tmp_path):
    skimage = pytest.importorskip("skimage")
    src = Image.open(Path(skimage.__file__).resolve().parent / "data" / "astronaut.png").convert("RGB").resize((320, 240))
    root = tmp_path / "img" / "seq"
    root.mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.roll(np.asarray(src), 9 * i, axis=1)).save(root / f"{i}.png")
    out = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(tmp_path / "img"), "--out", str(out), "--max-keypoints", "300", "--workers", "0", "--quiet"]) == 0
    return out


def test_match_verify_and_viz(features, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    assert main(["pairs", "--features", str(features), "--out", str(pairs), "--mode", "exhaustive"]) == 0
    out = tmp_path / "m.h5"
    args = ["match", "--features", str(features), "--pairs", str(pairs), "--out", str(out), "--ratio", "0.9", "--verify", "homography", "--quiet"]
    assert main([*args, "--viz", str(tmp_path / "viz"), "--viz-pairs", "2"]) == 0
    text = capsys.readouterr().out
    assert "3 pairs (0 already there, 3 matched" in text and "2 match images" in text
    # images shifted by 9 px: the verified matches are that shift
    m, _ = read_matches(out, "seq/0.png", "seq/1.png")
    with FeatureFile(features) as ff:
        shift = ff.read("seq/1.png")["keypoints"][m[:, 1]] - ff.read("seq/0.png")["keypoints"][m[:, 0]]
    assert len(m) > 30 and np.mean(np.abs(shift - [9, 0]).max(axis=1) < 1.0) > 0.95
    assert sorted(p.name for p in (tmp_path / "viz").iterdir()) == ["seq-0.png__seq-1.png.png", "seq-0.png__seq-2.png.png"]
    assert main(args) == 0
    assert "3 already there, 0 matched" in capsys.readouterr().out


def test_pair_with_absent_image_is_one_line_and_keeps_output(features, tmp_path, capsys):
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("seq/0.png seq/1.png\n")
    out = tmp_path / "m.h5"
    assert main(["match", "--features", str(features), "--pairs", str(pairs), "--out", str(out), "--quiet"]) == 0
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    pairs.write_text("seq/0.png seq/2.png\nseq/1.png seq/9.png\n")
    capsys.readouterr()
    assert main(["match", "--features", str(features), "--pairs", str(pairs), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"selfdesc: error: {pairs}: pair 'seq/1.png seq/9.png': image 'seq/9.png' is not in {features}"]
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest
