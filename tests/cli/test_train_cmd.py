"""`selfdesc train` end to end on a few images: runs, logs, resumes with the run's own config,
the CPU preset, Ctrl-C (exit status 130) and the time limit."""
import csv
import os
import signal
import threading
import time

import numpy as np
import torch
import yaml
from PIL import Image

from selfdesc.cli.main import main
from selfdesc.config import read_yaml
from selfdesc.distributed import available_cores

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


def test_resume_keeps_the_runs_own_config(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run = tmp_path / "run"
    first = ["train", "--images", str(tmp_path / "imgs"), "--out", str(run), "--preset", "none"]
    assert main([*first, "--config", "configs/hndesc_r2d2.yaml", "train.steps=2", "method.miner.num_negatives=7", "train.precision=fp32", *TINY]) == 0
    written = read_yaml(run / "config.yaml")
    capsys.readouterr()
    assert main([*first, "--resume", "train.steps=3"]) == 0  # neither --config nor the other overrides again
    assert "the run's own settings" in capsys.readouterr().out
    resumed = read_yaml(run / "config.yaml")
    assert resumed["method"] == written["method"] and resumed["method"]["miner"]["num_negatives"] == 7
    assert resumed["train"] == {**written["train"], "steps": 3}  # only the given override changed
    assert _steps(run) == [1, 2, 3]
    assert main(["train", "--resume", "--images", str(tmp_path / "imgs"), "--out", str(tmp_path / "none")]) == 2
    assert "config.yaml: no such file" in capsys.readouterr().err


def test_a_run_written_before_an_option_existed_resumes_and_can_set_it(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run = tmp_path / "run"
    first = ["train", "--images", str(tmp_path / "imgs"), "--out", str(run), "--preset", "none"]
    assert main([*first, "--config", "configs/hndesc_r2d2.yaml", "train.steps=2", "train.precision=fp32", *TINY]) == 0
    old = read_yaml(run / "config.yaml")
    del old["val"]["pose_root"], old["val"]["pose_max_keypoints"]  # as written by an older selfdesc
    (run / "config.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    assert main([*first, "--resume", "train.steps=3", "val.pose_max_keypoints=512"]) == 0
    resumed = read_yaml(run / "config.yaml")
    assert resumed["val"]["pose_root"] is None and resumed["val"]["pose_max_keypoints"] == 512
    assert _steps(run) == [1, 2, 3]


def test_cpu_preset_scales_the_gpu_config_and_overrides_win(tmp_path, capsys):
    _images(tmp_path / "imgs")
    base = ["train", "--config", "configs/hndesc_r2d2.yaml", "--images", str(tmp_path / "imgs")]
    assert main([*base, "--out", str(tmp_path / "cpu"), "train.steps=1", "train.progress=false", "train.batch_size=2"]) == 0
    out = capsys.readouterr().out
    assert "CPU preset" in out and "train.precision bf16 -> fp32" in out and "image files: 5 in" in out
    conf = read_yaml(tmp_path / "cpu" / "config.yaml")
    assert conf["train"]["precision"] == "fp32" and conf["train"]["batch_size"] == 2  # the override wins
    assert conf["method"]["hcrops"]["crop_size"] == 96 and conf["data"]["size"] == [192, 144]
    assert conf["train"]["num_workers"] <= max(0, available_cores() - 1)
    assert main([*base, "--out", str(tmp_path / "raw"), "--preset", "none", "train.steps=0", "train.progress=false"]) == 0
    assert read_yaml(tmp_path / "raw" / "config.yaml")["train"]["precision"] == "bf16"


def test_sigint_stops_a_cli_run_with_status_130_and_resume_continues(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run = tmp_path / "run"
    argv = ["train", "--images", str(tmp_path / "imgs"), "--out", str(run), "train.steps=100000", *TINY]

    def interrupt_after_the_first_checkpoint() -> None:
        while not (run / "checkpoints" / "last.pt").exists():
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGINT)

    sender = threading.Thread(target=interrupt_after_the_first_checkpoint)
    sender.start()
    rc = main(argv)
    sender.join()
    err = capsys.readouterr().err
    assert rc == 130 and "stopped by SIGINT" in err and "error" not in err and "--resume" in err
    stopped_at = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["step"]
    assert 0 < stopped_at < 100000 and _steps(run)[-1] == stopped_at
    assert main(["train", "--resume", "--images", str(tmp_path / "imgs"), "--out", str(run), f"train.steps={stopped_at + 1}"]) == 0
    assert _steps(run)[-1] == stopped_at + 1


def test_time_limit_exits_0_with_a_checkpoint(tmp_path, capsys):
    _images(tmp_path / "imgs")
    run = tmp_path / "run"
    assert main(["train", "--images", str(tmp_path / "imgs"), "--out", str(run), "--max-minutes", "0.0001", "train.steps=50", *TINY]) == 0
    assert "stopped by the time limit at step 1" in capsys.readouterr().err
    assert _steps(run) == [1]
