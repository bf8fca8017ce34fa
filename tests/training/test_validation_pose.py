"""Validation on real pairs (``val.pose_root``): relative-pose AUC logged beside MMA, ``best.pt`` chosen
by a pose score, and every misconfiguration refused before the first step."""
import csv
import re

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from selfdesc.cli.main import main
from selfdesc.datasets.strecha import covisible_pairs, load_scene
from selfdesc.errors import ConfigError, DatasetError
from selfdesc.eval.pose import PoseBenchmarkConfig, run_pose_benchmark
from selfdesc.methods.matcher import MatcherValidation
from selfdesc.training.validation import SyntheticValidation, ValidationConfig, load_validation_pose_pairs
from tests.cli.test_train_cmd import TINY
from tests.conftest import shared_path

FOUNTAIN = "eval/strecha/fountain-P11"
SIDE = 320  # the test's real pairs are Strecha images down-sized to this width


def _folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"{i}.png")
    return path


def _scaled_K(K: np.ndarray, s: float) -> np.ndarray:
    """Intrinsics of the image resized by ``s`` (pixel-centre convention: ``c' = (c + 0.5) s - 0.5``)."""
    out = K.copy()
    out[:2, :2] *= s
    out[:2, 2] = (K[:2, 2] + 0.5) * s - 0.5
    return out


def _pair_folder(path, names=("0003.jpg", "0004.jpg", "0005.jpg", "0006.jpg")):
    """A SuperGlue pair-list folder of the co-visible pairs among ``names`` of fountain-P11, the images
    down-sized to ``SIDE`` px wide and the intrinsics scaled with them."""
    scene = load_scene(shared_path(FOUNTAIN))
    (path / "images").mkdir(parents=True)
    scale = {}
    for name in names:
        image = Image.open(scene.root / "images" / name)
        scale[name] = SIDE / image.width
        image.resize((SIDE, round(image.height * scale[name])), Image.BILINEAR).save(path / "images" / name)
    lines = []
    for pair in covisible_pairs(scene):
        n0, n1 = pair.image0.name, pair.image1.name
        if n0 in scale and n1 in scale:
            values = [*_scaled_K(pair.K0, scale[n0]).ravel(), *_scaled_K(pair.K1, scale[n1]).ravel(), *pair.T_0to1.ravel()]
            lines.append(" ".join([n0, n1, "0", "0", *(f"{v:.10g}" for v in values)]))
    (path / "val_pairs.txt").write_text("\n".join(lines) + "\n")
    return path, len(lines)


def test_pose_scores_need_pose_root(tmp_path):
    for score in ("pose_auc@5", "mma@1+3+pose_auc@5"):
        with pytest.raises(ConfigError, match=re.escape(f"val.score {score} needs real pairs: set val.pose_root")):
            SyntheticValidation(ValidationConfig(images=str(tmp_path), score=score), "hndesc", tmp_path)


def test_bad_pose_options_are_one_line_errors(tmp_path):
    with pytest.raises(DatasetError, match="nowhere: no such folder or file \\(val.pose_root\\)"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(tmp_path / "nowhere")))
    with pytest.raises(ConfigError, match="unknown val.pose_format 'colmap'"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(tmp_path), pose_format="colmap"))
    with pytest.raises(ConfigError, match="val.pose_scenes applies to val.pose_format strecha only"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(tmp_path), pose_format="pairs", pose_scenes="a"))
    with pytest.raises(DatasetError, match="no scene folders"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(tmp_path)))
    with pytest.raises(DatasetError, match="no pair list|pairs"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(tmp_path), pose_format="pairs"))
    assert load_validation_pose_pairs(ValidationConfig()) == []


def test_one_strecha_scene_gives_its_covisible_pairs():
    root = shared_path(FOUNTAIN).parent
    pairs = load_validation_pose_pairs(ValidationConfig(pose_root=str(root), pose_scenes="fountain-P11"))
    expected = covisible_pairs(load_scene(root / "fountain-P11"))
    assert [p.name for p in pairs] == [p.name for p in expected] and pairs
    assert {p.scene for p in pairs} == {"fountain-P11"}
    both = load_validation_pose_pairs(ValidationConfig(pose_root=str(root), pose_scenes=["fountain-P11", "entry-P10"]))
    assert {p.scene for p in both} == {"fountain-P11", "entry-P10"}
    with pytest.raises(DatasetError, match="castle-P19: no such Strecha scene \\(val.pose_scenes"):
        load_validation_pose_pairs(ValidationConfig(pose_root=str(root), pose_scenes=["fountain-P11", "castle-P19"]))


def test_train_refuses_a_missing_pose_folder_before_training(tmp_path, capsys):
    train = _folder(tmp_path / "train", [skdata.astronaut()[::4, ::4], skdata.coffee()[::4, ::4]])
    val = _folder(tmp_path / "val", [skdata.chelsea()[::3, ::3], skdata.rocket()[::3, ::3]])
    missing = tmp_path / "no-strecha"

    def train_with(run, *overrides):
        options = ["train.steps=2", *TINY, "method.backbone.name=lite", "method.backbone.dim=32", *overrides]
        return main(["train", "--images", str(train), "--out", str(tmp_path / run), *options])

    assert train_with("run", f"val.images={val}", f"val.pose_root={missing}") == 2
    err = capsys.readouterr().err.strip()
    assert err == f"selfdesc: error: {missing}: no such folder or file (val.pose_root)"
    assert not (tmp_path / "run" / "checkpoints").exists() and not (tmp_path / "run" / "validation-synth").exists()
    assert train_with("run2", f"val.pose_root={tmp_path}") == 2
    assert "val.pose_root needs val.images" in capsys.readouterr().err
    assert train_with("run3", f"val.images={val}", "val.score=pose_auc@10") == 2
    assert "val.score pose_auc@10 needs real pairs" in capsys.readouterr().err


def test_matcher_validation_refuses_pose_pairs(tmp_path):
    for conf in (ValidationConfig(images=str(tmp_path), pose_root=str(tmp_path)), ValidationConfig(images=str(tmp_path), score="pose_auc@5")):
        with pytest.raises(ConfigError, match="train-matcher validation scores synthetic pairs only"):
            MatcherValidation(conf, "matcher", tmp_path)


def test_pose_validation_logs_auc_and_best_follows_the_pose_score(tmp_path, capsys):
    """Warm-started from the shipped lite model, the validation's pose AUC on real pairs is far above
    chance, equals ``selfdesc eval pose``'s figure for the exported model, and selects ``best.pt``."""
    torch.set_num_threads(1)
    pose_root, num_pairs = _pair_folder(tmp_path / "pose")
    assert num_pairs >= 3
    train = _folder(tmp_path / "train", [skdata.astronaut()[::4, ::4], skdata.coffee()[::4, ::4]])
    val = _folder(tmp_path / "val", [skdata.chelsea()[::3, ::3], skdata.rocket()[::3, ::3]])
    run = tmp_path / "run"
    args = [
        "train", "--config", "configs/hndesc_lite_v2.yaml", "--images", str(train), "--out", str(run), "--init-from", "selfdesc/weights/hndesc_lite.pt",
        "train.steps=4", *TINY, "train.validate_every=2", f"val.images={val}", "val.num_images=2", "val.max_side=96", "val.max_keypoints=200",
        f"val.pose_root={pose_root}", "val.pose_format=pairs", "val.pose_resize_max=null", "val.pose_max_keypoints=1024", "val.score=mma@1+3+pose_auc@5",
    ]
    assert main(args) == 0
    assert f"and {num_pairs} real pose pairs every 2 steps, best.pt by mma@1+3+pose_auc@5" in capsys.readouterr().out
    rows = [r for r in csv.DictReader(open(run / "metrics.csv", newline="")) if r.get("val/score")]
    assert [int(r["step"]) for r in rows] == [2, 4]
    for r in rows:
        auc = [float(r[f"val/pose_auc@{t}"]) for t in (5, 10, 20)]
        assert 0.0 <= auc[0] <= auc[1] <= auc[2] <= 1.0
        assert float(r["val/score"]) == pytest.approx((float(r["val/mma@1"]) + float(r["val/mma@3"]) + auc[0]) / 3)
        assert float(r["val/pose_num_matches"]) > 0
    assert float(rows[-1]["val/pose_auc@20"]) > 0.3  # chance is about 0
    # best.pt holds the first step with the highest score
    scores = [float(r["val/score"]) for r in rows]
    best = torch.load(run / "checkpoints" / "best.pt", map_location="cpu", weights_only=False)
    assert best["step"] == int(rows[int(np.argmax(scores))]["step"])
    # one evaluation loop: `selfdesc eval pose` on the last exported model gives the logged AUC
    model = str(run / "validation-model.pt")
    pairs = load_validation_pose_pairs(ValidationConfig(pose_root=str(pose_root), pose_format="pairs"))
    overall = run_pose_benchmark([model], pairs, PoseBenchmarkConfig(max_keypoints=1024), progress=False)[0][model]["overall"]
    for t in ("5", "10", "20"):
        assert overall["auc"][t] == pytest.approx(float(rows[-1][f"val/pose_auc@{t}"]), abs=1e-6)
