"""`selfdesc train` end to end on a few images: runs, logs, resumes."""
import csv

import numpy as np
from PIL import Image

from selfdesc.cli.main import main

TINY = [
    "train.batch_size=2", "train.num_workers=0", "train.log_every=1", "train.checkpoint_every=2", "train.progress=false",
    "data.size=[128,96]", "method.hcrops.crop_size=64", "method.hcrops.num_keypoints=32", "method.keypoints.num_source_points=128",
]


def _images(folder, n=4):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        small = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        Image.fromarray(small).resize((160, 120), Image.BICUBIC).save(folder / f"{i}.png")
    (folder / "broken.jpg").write_bytes(b"nope")


def _steps(run):
    with open(run / "metrics.csv", newline="") as f:
        return [int(r["step"]) for r in csv.DictReader(f)]


def test_train_and_resume(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--config", "configs/hndesc_r2d2.yaml", "--images", str(tmp_path / "imgs"), "--out", str(run), "train.steps=2", *TINY]) == 0
    assert _steps(run) == [1, 2] and (run / "checkpoints" / "last.pt").is_file() and (run / "config.yaml").is_file()
    assert main(["train", "--images", str(tmp_path / "imgs"), "--out", str(run), "train.steps=3", *TINY]) == 2  # exists: needs --resume
    assert "--resume" in capsys.readouterr().err
    assert main(["train", "--resume", "--images", str(tmp_path / "imgs"), "--out", str(run), "train.steps=3", *TINY]) == 0
    assert _steps(run) == [1, 2, 3]


def test_bad_override(tmp_path, capsys):
    _images(tmp_path / "imgs")
    assert main(["train", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "r"), "method.miner.pool=nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err
