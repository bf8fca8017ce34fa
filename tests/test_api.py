"""``selfdesc.load`` / ``selfdesc.match``: the documented example runs, names and model files resolve."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

import selfdesc
from selfdesc.errors import ConfigError, WeightsError
from selfdesc.models.l2net import QuadL2Net
from selfdesc.weights import save_model_file

DOC = Path(__file__).resolve().parent.parent / "docs" / "pipeline.md"


def hndesc_model_file(path: Path) -> Path:
    """A small randomly initialised HNDesc model file (the format of ``selfdesc export-weights``)."""
    backbone = {"name": "r2d2", "dim": 16, "mchan": 1, "final_relu": True, "heads": True}
    torch.manual_seed(0)
    net = QuadL2Net({k: v for k, v in backbone.items() if k != "name"})
    save_model_file(path, method="hndesc", conf={"backbone": backbone}, state_dict=net.state_dict(), meta={"step": 0})
    return path


def test_readme_example_runs(capsys):
    pytest.importorskip("skimage")
    code = re.search(r"## Python API\n\n```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 12
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    matches, kp0, kp1 = scope["matches"], scope["kp0"], scope["kp1"]
    assert matches.ndim == 2 and matches.shape[1] == 2 and len(matches) > 100
    # a 15 degree rotation about the image centre: most matches must agree with it
    h, w = scope["image0"].shape[:2]
    c = np.array([(w - 1) / 2, (h - 1) / 2])
    a = np.deg2rad(15)
    R = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])  # skimage rotates counter-clockwise on screen
    pred = (kp0.numpy() - c) @ R.T + c
    assert np.mean(np.linalg.norm(pred - kp1.numpy(), axis=1) < 3) > 0.8
    assert "matches" in capsys.readouterr().out


def test_match_accepts_dicts_and_arrays():
    rng = np.random.default_rng(0)
    d = rng.normal(size=(20, 8)).astype(np.float32)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    perm = rng.permutation(20)
    m, s = selfdesc.match({"descriptors": torch.from_numpy(d)}, d[perm])
    assert m.tolist() == [[i, int(np.where(perm == i)[0][0])] for i in range(20)]
    np.testing.assert_allclose(s, 1.0, atol=1e-5)


def test_load_by_name_and_by_model_file(tmp_path):
    from selfdesc.features.hndesc import HNDescFeatures
    from selfdesc.features.opencv import SIFT

    sift = selfdesc.load("sift", max_keypoints=10)
    assert isinstance(sift, SIFT) and sift.conf["max_keypoints"] == 10
    model = hndesc_model_file(tmp_path / "m.pt")
    ext = selfdesc.load(model, max_keypoints=50)
    assert isinstance(ext, HNDescFeatures) and ext.conf["checkpoint"] == str(model)
    out = ext.extract(np.random.default_rng(0).uniform(size=(64, 80, 3)).astype(np.float32))
    assert out["descriptors"].shape[1] == 16 and out["image_size"].tolist() == [80, 64]


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="unknown feature 'nope': not a registered name"):
        selfdesc.load("nope")
    bad = tmp_path / "bad.pt"
    torch.save({"hello": 1}, bad)
    with pytest.raises(WeightsError, match="bad.pt: not a selfdesc model file"):
        selfdesc.load(bad)
