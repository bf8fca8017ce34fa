"""`selfdesc match --matcher` end to end with a tiny matcher file made here."""
from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import torch
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.matching.attention_matcher import AttentionMatcher
from selfdesc.matching.learned import load_matcher
from selfdesc.pipeline.h5io import FeatureFile, read_matches
from selfdesc.weights import save_model_file


def _matcher_file(path, dim=128, features="sift"):
    torch.manual_seed(0)
    model = AttentionMatcher({"descriptor_dim": dim, "width": 32, "num_heads": 2, "num_layers": 1, "filter_threshold": 0.0})
    save_model_file(path, method="matcher", conf={"matcher": model.conf, "features": features, "descriptor_dim": dim}, state_dict=model.state_dict(), meta={})
    return path


@pytest.fixture
def setup(tmp_path):
    rng = np.random.default_rng(0)
    base = np.asarray(Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((320, 240), Image.BICUBIC))
    root = tmp_path / "img"
    root.mkdir()
    for i in range(3):
        Image.fromarray(np.roll(base, 7 * i, axis=0)).save(root / f"{i}.png")
    feats = tmp_path / "f.h5"
    assert main(["extract", "--features", "sift", "--images", str(root), "--out", str(feats), "--max-keypoints", "150", "--workers", "0", "--quiet"]) == 0
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("0.png 1.png\n0.png 2.png\n1.png 2.png\n")
    return feats, pairs


def test_match_with_matcher_file(setup, tmp_path, capsys):
    feats, pairs = setup
    model = _matcher_file(tmp_path / "tiny.pt")
    out1, out3 = tmp_path / "m1.h5", tmp_path / "m3.h5"
    base = ["match", "--features", str(feats), "--pairs", str(pairs), "--matcher", str(model), "--quiet"]
    assert main([*base, "--out", str(out1), "--batch-size", "1"]) == 0
    assert main([*base, "--out", str(out3), "--batch-size", "3"]) == 0  # padded batches give the same matches
    assert "3 pairs (0 already there, 3 matched" in capsys.readouterr().out
    matcher = load_matcher(model)
    with FeatureFile(feats) as ff:
        for a, b in [("0.png", "1.png"), ("0.png", "2.png"), ("1.png", "2.png")]:
            expected, _ = matcher.match(ff.read(a), ff.read(b))
            m1, _ = read_matches(out1, a, b)
            m3, _ = read_matches(out3, a, b)
            assert len(expected) > 0 and np.array_equal(m1, expected) and np.array_equal(m3, expected)


def test_matcher_errors_are_one_line(setup, tmp_path, capsys):
    feats, pairs = setup
    base = ["match", "--features", str(feats), "--pairs", str(pairs), "--out", str(tmp_path / "m.h5"), "--quiet"]
    wrong_dim = _matcher_file(tmp_path / "d64.pt", dim=64, features="other")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"no")
    cases = [
        (["--matcher", "nonexistent"], "unknown matcher 'nonexistent'"),
        (["--matcher", str(tmp_path / "missing.pt")], "no such matcher file"),
        (["--matcher", str(garbage)], "garbage.pt"),
        (["--matcher", str(wrong_dim)], "expects 64-dimensional descriptors"),
        (["--matcher", str(wrong_dim), "--ratio", "0.9"], "--ratio"),
    ]
    for extra, message in cases:
        capsys.readouterr()
        with pytest.warns(UserWarning, match="trained for features 'other'") if extra == ["--matcher", str(wrong_dim)] else nullcontext():
            assert main([*base, *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("selfdesc: error:") and message in err[0], (extra, err)



def test_eval_homography_with_and_without_matcher(tmp_path):
    import json

    import selfdesc

    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).resize((240, 180), Image.BICUBIC).save(tmp_path / "a.png")
    (tmp_path / "pairs.txt").write_text("a.png a.png 1 0 0 0 1 0 0 0 1\n")
    model = _matcher_file(tmp_path / "tiny.pt")
    out = tmp_path / "out"
    args = ["eval", "homography", "--dataset", "pairs", "--root", str(tmp_path / "pairs.txt"), "--features", "sift", "--out", str(out), "--quiet", "--no-plot"]
    assert main([*args, "--matcher", f"sift={model}"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"sift", "sift+matcher"}
    f = selfdesc.load("sift").extract(np.asarray(Image.open(tmp_path / "a.png")))
    expected = len(load_matcher(model).match(f, f)[0])
    assert expected > 0 and results["sift+matcher"]["overall"]["num_matches"] == expected
    assert results["sift"]["overall"]["mma"]["1"] == 1.0  # MNN on an identity pair, unchanged
    assert json.loads((out / "run.json").read_text())["config"]["matchers"] == {"sift": str(model)}
    assert "| sift+matcher | overall |" in (out / "results.md").read_text() and "FEATURE+matcher rows" in (out / "results.md").read_text()


@pytest.mark.parametrize(
    "args, message",
    [
        (["eval", "homography", "--dataset", "pairs", "--root", "{tmp}/p.txt", "--features", "sift", "--matcher", "orb=x.pt", "--out", "{tmp}/o"], "FEATURE=MATCHER"),
        (["eval", "pose", "--root", "{tmp}", "--format", "pairs", "--features", "sift", "--matcher", "sift=", "--out", "{tmp}/o"], "FEATURE=MATCHER"),
        (["sfm", "--images", "{tmp}", "--features", "sift", "--matcher", "nonexistent", "--out", "{tmp}/o"], "unknown matcher 'nonexistent'"),
        (["eval", "homography", "--dataset", "pairs", "--root", "{tmp}/p.txt", "--features", "sift", "--matcher", "{tmp}/no.pt", "--out", "{tmp}/o"], "no such matcher file"),
    ],
)
def test_matcher_option_errors(tmp_path, capsys, args, message):
    (tmp_path / "p.txt").write_text("a.png a.png 1 0 0 0 1 0 0 0 1\n")
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfdesc: error: ") and "\n" not in err and message in err, err


def test_sfm_matches_with_the_matcher(setup, tmp_path, capsys):
    import json

    import h5py

    model = _matcher_file(tmp_path / "tiny.pt")
    out = tmp_path / "sfm"
    code = main(["sfm", "--images", str(tmp_path / "img"), "--features", "sift", "--matcher", str(model), "--out", str(out), "--max-keypoints", "150", "--quiet"])
    assert code == 0 and capsys.readouterr().out.strip().splitlines()[-1].startswith("registered ")
    with h5py.File(out / "matches.h5", "r") as f:
        assert json.loads(f.attrs["conf"])["matcher"] == str(model)
    m, _ = read_matches(out / "matches.h5", "0.png", "1.png", verified=False)
    with FeatureFile(out / "features.h5") as ff:
        expected, _ = load_matcher(model).match(ff.read("0.png"), ff.read("1.png"))
    assert np.array_equal(m, expected)
