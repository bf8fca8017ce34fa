"""``selfdesc sfm``, ``selfdesc eval pose`` and ``selfdesc eval sfm`` end to end, and their one-line errors."""
from __future__ import annotations

import json
import re
import shutil

import pytest

from selfdesc.cli.main import main
from tests.conftest import shared_path

SUMMARY = re.compile(r"^registered (\d+)/(\d+) images, (\d+) points, track length [\d.]+, reprojection error [\d.]+ px$")


def _mini_strecha(tmp_path, n=3):
    """The first ``n`` views of Herz-Jesus-P8 (images and cameras) in a scene folder."""
    src = shared_path("eval/strecha/Herz-Jesus-P8")
    scene = tmp_path / "data" / "herz"
    (scene / "images").mkdir(parents=True)
    (scene / "cameras").mkdir()
    for i in range(n):
        shutil.copy(src / "images" / f"{i:04d}.jpg", scene / "images")
        shutil.copy(src / "cameras" / f"{i:04d}.jpg.camera", scene / "cameras")
    return scene


def test_sfm_reconstructs_three_real_views(tmp_path, capsys):
    scene = _mini_strecha(tmp_path)
    out, hloc = tmp_path / "sfm", tmp_path / "hloc"
    args = ["sfm", "--images", str(scene / "images"), "--features", "sift", "--out", str(out), "--resize", "640", "--max-keypoints", "1500"]
    code = main([*args, "--camera-mode", "single", "--hloc", str(hloc), "--quiet"])
    assert code == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    m = SUMMARY.match(line)
    assert m, line
    assert (int(m[1]), int(m[2])) == (3, 3) and int(m[3]) > 200
    for name in ("features.h5", "matches.h5", "pairs.txt", "database.db", "summary.json", "sfm.png", "sfm/images.bin"):
        assert (out / name).is_file(), name
    assert (hloc / "sfm_sift+NN-mutual" / "points3D.bin").is_file()
    assert json.loads((out / "summary.json").read_text())["summary"]["registered"] == 3


def test_eval_pose_writes_the_results_contract(tmp_path, capsys):
    scene = _mini_strecha(tmp_path)
    out = tmp_path / "pose"
    code = main(["eval", "pose", "--root", str(scene.parent), "--format", "strecha", "--features", "sift", "--out", str(out), "--resize-max", "640", "--quiet"])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"sift"} and set(results["sift"]) == {"herz", "overall"}
    entry = results["sift"]["overall"]
    assert list(entry["auc"]) == ["5", "10", "20"] and entry["num_pairs"] == 3
    # three neighbouring views of a textured facade: SIFT gets every pose within 5 degrees
    assert entry["auc"]["20"] > 0.8
    assert len(json.loads((out / "pairs.json").read_text())["sift"]) == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["sfm", "--images", "{tmp}/none", "--features", "sift", "--out", "{tmp}/o"], "no such folder"),
        (["sfm", "--images", "{tmp}", "--features", "sift,orb", "--out", "{tmp}/o"], "sfm takes one feature"),
        (["sfm", "--images", "{tmp}", "--features", "nope", "--out", "{tmp}/o"], "unknown feature"),
        (["sfm", "--images", "{tmp}", "--features", "sift", "--out", "{tmp}/o", "--max-keypoints", "0"], "--max-keypoints must be at least 1"),
        (["eval", "pose", "--root", "{tmp}", "--format", "strecha", "--features", "sift", "--out", "{tmp}/o"], "no scene folders"),
        (["eval", "pose", "--root", "{tmp}", "--format", "pairs", "--features", "sift", "--out", "{tmp}/o"], "exactly one \\*pairs\\*.txt"),
        (["eval", "pose", "--root", "{tmp}", "--format", "pairs", "--features", "sift", "--out", "{tmp}/o", "--max-angle", "10"], "apply to --format strecha"),
        (["eval", "sfm", "--root", "{tmp}/none", "--features", "sift", "--out", "{tmp}/o"], "no such folder"),
    ],
)
def test_bad_inputs_give_one_line_errors(tmp_path, capsys, args, message):
    code = main([a.format(tmp=tmp_path) for a in args])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("selfdesc: error: ") and "\n" not in err
    assert re.search(message, err), err
