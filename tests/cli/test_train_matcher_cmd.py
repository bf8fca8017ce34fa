"""`selfdesc train-matcher` end to end on a few images: trains on the engine, resumes, exports, loads."""
import csv

import numpy as np
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.matching.learned import load_matcher

TINY = [
    "train.batch_size=2", "train.num_workers=0", "train.log_every=1", "train.checkpoint_every=2", "train.progress=false",
    "data.size=[160,120]", "method.hcrops.crop_size=96", "method.hcrops.num_source_points=64", "method.features.max_keypoints=48",
    "method.matcher.width=32", "method.matcher.num_heads=2", "method.matcher.num_layers=1",
]


def _images(folder, n=3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((160, 120), Image.BICUBIC).save(folder / f"{i}.png")


def _steps(run):
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_train_resume_export(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run, model = tmp_path / "run", tmp_path / "matcher.pt"
    args = ["train-matcher", "--config", "configs/matcher_default.yaml", "--features", "sift", "--images", str(tmp_path / "imgs"), "--out", str(run)]
    val = [f"val.images={tmp_path / 'imgs'}", "val.num_images=1", "val.max_side=160", "val.max_keypoints=48", "train.validate_every=2"]
    assert main([*args, "train.steps=2", *TINY, *val]) == 0
    assert _steps(run) == [1, 2, 2]  # the step, then its validation
    with open(run / "metrics.csv", newline="") as f:
        row = list(csv.DictReader(f))[-1]
    assert 0 <= float(row["val/mma@3"]) <= 1 and 0 <= float(row["val/mnn_mma@3"]) <= 1 and float(row["val/mnn_num_matches"]) > 0
    assert (run / "checkpoints" / "best.pt").is_file()
    assert main([*args, "--resume", "train.steps=3", *TINY]) == 0
    assert _steps(run) == [1, 2, 2, 3, 3]  # the resumed run keeps its config.yaml: validation at its last step too
    assert "descriptor_dim: 128" in (run / "config.yaml").read_text()
    assert main(["export-weights", str(run), str(model)]) == 0
    m = load_matcher(model)
    assert m.features == "sift" and m.descriptor_dim == 128 and m.model.conf["num_layers"] == 1
    assert load_matcher(run / "checkpoints" / "last.pt").features == "sift"  # a training checkpoint works too


def test_errors_are_one_line(tmp_path, capsys):
    _images(tmp_path / "imgs")
    base = ["train-matcher", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "r")]
    assert main([*base, "--features", "nofeature"]) == 2
    assert main([*base, "--features", "sift,orb"]) == 2
    assert main([*base, "--features", "sift", "method.name=hndesc"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("selfdesc: error:") for line in err)
    assert "nofeature" in err[0] and "one feature" in err[1] and "method.features" in err[2]
