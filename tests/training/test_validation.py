"""Validation callback (MMA on a held-out synthetic set) and model export, end to end through the CLI."""
import csv

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from selfdesc.cli.main import main
from selfdesc.errors import ConfigError
from selfdesc.features import load_extractor
from selfdesc.training.validation import SyntheticValidation, ValidationConfig
from selfdesc.weights import read_model_file

TINY = [
    "train.batch_size=2", "train.num_workers=0", "train.log_every=1", "train.checkpoint_every=2", "train.progress=false",
    "data.size=[128,96]", "method.hcrops.crop_size=64", "method.hcrops.num_keypoints=32", "method.keypoints.num_source_points=128",
    "method.backbone.mchan=1", "train.validate_every=2", "val.num_images=2", "val.max_side=96", "val.max_keypoints=200",
]


def _folder(path, images):
    path.mkdir()
    for i, img in enumerate(images):
        Image.fromarray(img).save(path / f"{i}.png")
    return path


def test_validation_logs_scores_and_keeps_best(tmp_path):
    train = _folder(tmp_path / "train", [skdata.astronaut()[::4, ::4], skdata.coffee()[::4, ::4]])
    val = _folder(tmp_path / "val", [skdata.chelsea()[::3, ::3], skdata.rocket()[::3, ::3]])
    run = tmp_path / "run"
    args = ["train", "--config", "configs/hndesc_r2d2.yaml", "--images", str(train), "--out", str(run), "train.steps=2", f"val.images={val}", *TINY]
    assert main(args) == 0
    rows = list(csv.DictReader(open(run / "metrics.csv", newline="")))
    val_rows = [r for r in rows if r.get("val/mma@3")]
    assert [int(r["step"]) for r in val_rows] == [2]
    mma1, mma3 = float(val_rows[0]["val/mma@1"]), float(val_rows[0]["val/mma@3"])
    assert 0.0 <= mma1 <= mma3 <= 1.0
    assert float(val_rows[0]["val/mma@1+3"]) == pytest.approx(0.5 * (mma1 + mma3))
    assert (run / "checkpoints" / "best.pt").is_file() and (run / "validation-synth").is_dir()

    # export: the model file reproduces the trained network exactly
    out = tmp_path / "model.pt"
    assert main(["export-weights", str(run), str(out)]) == 0
    model = read_model_file(out, method="hndesc")
    assert model["meta"]["step"] == 2 and model["conf"]["backbone"]["mchan"] == 1
    ckpt = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    for key, value in model["state_dict"].items():
        assert torch.equal(value, ckpt["model"][f"net.{key}"])
    # and the extractor reads both the model file and the training checkpoint the same way
    image = np.asarray(Image.open(val / "0.png"))
    f_file = load_extractor(str(out), max_keypoints=100).extract(image)
    f_ckpt = load_extractor(str(run / "checkpoints" / "last.pt"), max_keypoints=100).extract(image)
    assert torch.equal(f_file["keypoints"], f_ckpt["keypoints"]) and torch.allclose(f_file["descriptors"], f_ckpt["descriptors"])


def test_validation_needs_images(tmp_path):
    with pytest.raises(ConfigError, match="val.images"):
        SyntheticValidation(ValidationConfig(), "hndesc", tmp_path)


def test_unknown_validation_score(tmp_path):
    with pytest.raises(ConfigError, match="mma@1\\+3"):
        SyntheticValidation(ValidationConfig(images=str(tmp_path), score="mma@2"), "hndesc", tmp_path)
