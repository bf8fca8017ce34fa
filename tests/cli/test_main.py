"""End-to-end CLI behaviour: the results.json contract, identity answers and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from selfdesc.cli.main import main


def _textured(path, seed=0, size=(240, 180)):
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 6, size[0] // 6, 3), dtype=np.uint8)
    Image.fromarray(small).resize(size, Image.BICUBIC).save(path)


def _identity_pairs(tmp_path):
    _textured(tmp_path / "a.png")
    ident = " ".join(["1", "0", "0", "0", "1", "0", "0", "0", "1"])
    (tmp_path / "pairs.txt").write_text(f"# identity pair\na.png a.png {ident}\n")
    return tmp_path / "pairs.txt"


def test_identity_pair_gives_perfect_scores(tmp_path, capsys):
    pairs = _identity_pairs(tmp_path)
    out = tmp_path / "out"
    code = main(["eval", "homography", "--dataset", "pairs", "--root", str(pairs), "--features", "sift,orb", "--out", str(out), "--quiet", "--no-plot"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"sift", "orb"}
    for feature in results.values():
        assert set(feature) == {"overall"}
        entry = feature["overall"]
        assert set(entry) == {"mma", "homography_accuracy", "num_features", "num_matches", "num_pairs"}
        assert list(entry["mma"]) == [str(t) for t in range(1, 11)]
        assert list(entry["homography_accuracy"]) == ["1", "3", "5", "10"]
        assert entry["mma"]["1"] == 1.0
        assert entry["homography_accuracy"]["1"] == 1.0
        assert entry["num_pairs"] == 1 and entry["num_matches"] > 20
    run = json.loads((out / "run.json").read_text())
    assert run["dataset"]["synthetic"] is False and run["timing"]["sift"]["seconds_per_image"] > 0
    assert "| sift | overall | 1.000 |" in (out / "results.md").read_text()


def test_hpatches_layout_writes_splits_and_caches(graf_root, tmp_path):
    out = tmp_path / "o"
    assert main(["eval", "homography", "--dataset", "hpatches", "--root", str(graf_root), "--features", "orb", "--max-keypoints", "500", "--out", str(out), "--quiet"]) == 0
    res = json.loads((out / "results.json").read_text())["orb"]
    assert set(res) == {"overall", "v"} and res["v"]["num_pairs"] == 5
    assert res["overall"] == res["v"]
    assert res["v"]["num_features"] <= 500
    assert (out / "caches" / "orb.npy").is_file() and (out / "mma.png").stat().st_size > 1000


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("selfdesc: error: ")
    return err[0]


def test_unknown_feature(tmp_path, capsys):
    pairs = _identity_pairs(tmp_path)
    assert main(["eval", "homography", "--dataset", "pairs", "--root", str(pairs), "--features", "sift,surfish", "--out", str(tmp_path / "o")]) == 2
    assert "surfish" in _error_line(capsys)


def test_corrupt_image_names_the_file(tmp_path, capsys):
    pairs = _identity_pairs(tmp_path)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    assert main(["eval", "homography", "--dataset", "pairs", "--root", str(pairs), "--features", "sift", "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "a.png" in _error_line(capsys)
    assert not (tmp_path / "o" / "results.json").exists()


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["data", "synth", "--base", str(tmp_path / "empty"), "--out", str(tmp_path / "s")]) == 2
    assert "empty" in _error_line(capsys)
    assert main(["eval", "homography", "--dataset", "hpatches", "--root", str(tmp_path / "empty"), "--features", "sift", "--out", str(tmp_path / "o")]) == 2
    assert "empty" in _error_line(capsys)


def test_missing_weight_file(tmp_path, capsys):
    pairs = _identity_pairs(tmp_path)
    (tmp_path / "w").mkdir()
    code = main(["eval", "homography", "--dataset", "pairs", "--root", str(pairs), "--features", "disk", "--weights-dir", str(tmp_path / "w"), "--out", str(tmp_path / "o")])
    assert code == 2
    line = _error_line(capsys)
    assert "depth-save.pth" in line and "disk" in line


def test_existing_results_survive_a_failed_run(tmp_path, capsys):
    pairs = _identity_pairs(tmp_path)
    out = tmp_path / "o"
    out.mkdir()
    (out / "results.json").write_text('{"old": 1}\n')
    (tmp_path / "a.png").write_text("not an image")
    assert main(["eval", "homography", "--dataset", "pairs", "--root", str(pairs), "--features", "sift", "--out", str(out), "--quiet"]) == 2
    assert (out / "results.json").read_text() == '{"old": 1}\n'


@pytest.mark.parametrize("argv", [["features"], ["--version"]])
def test_info_commands(argv, capsys):
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's --version exits
        code = exc.code
    assert code == 0
    assert capsys.readouterr().out.strip()


def test_synth_options_reach_the_manifest(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    _textured(base / "a.png", size=(120, 90))
    out = tmp_path / "synth"
    assert main(["data", "synth", "--base", str(base), "--out", str(out), "--seed", "3", "--max-rotation", "0", "--max-side", "100"]) == 0
    manifest = json.loads((out / "SYNTHETIC.json").read_text())
    assert manifest["seed"] == 3 and manifest["synthetic"] is True
    assert manifest["homography_ranges"]["max_rotation_deg"] == 0
    # a second build with another seed into the same folder via eval is refused, not silently reused
    code = main(["eval", "homography", "--dataset", "synth", "--root", str(base), "--seed", "4", "--features", "orb", "--out", str(tmp_path / "e"), "--quiet", "--no-plot"])
    assert code == 0  # builds into e/synth-benchmark with seed 4
    assert json.loads((tmp_path / "e" / "synth-benchmark" / "SYNTHETIC.json").read_text())["seed"] == 4
    assert json.loads((tmp_path / "e" / "run.json").read_text())["dataset"]["synthetic"] is True
    assert set(json.loads((tmp_path / "e" / "pairs.json").read_text())["orb"][0]) >= {"pair", "split", "num_matches", "mma", "homography_error"}
    code = main(["eval", "homography", "--dataset", "synth", "--root", str(base), "--seed", "5", "--features", "orb", "--out", str(tmp_path / "e"), "--quiet", "--no-plot"])
    assert code == 2
