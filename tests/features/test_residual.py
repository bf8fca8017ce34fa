from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features import load_extractor
from selfdesc.features.base import to_tensor
from selfdesc.features.residual import Handcrafted, ResidualFeatures, ResidualSIFT
from selfdesc.models.residual import ResidualNet
from selfdesc.weights import save_model_file

SMALL_CNN = {"channels": [8, 8, 16, 16], "dim": 128}


def _model_file(path, handcrafted, **model):
    torch.manual_seed(0)
    net = ResidualNet({"cnn": SMALL_CNN, **model})
    conf = {"model": net.conf, "handcrafted": handcrafted}
    save_model_file(path, method="residual", conf=conf, state_dict=net.state_dict(), meta={})
    return path, net


@pytest.mark.parametrize("name,upright", [("sift", False), ("rootsift", True)])
def test_handcrafted_is_the_opencv_extractor(name, upright, texture):
    image = to_tensor(texture)
    g = Handcrafted({"name": name, "upright": upright, "max_keypoints": 300})(image)
    ref = load_extractor(name, upright=upright, max_keypoints=300)({"image": image})
    assert len(g["keypoints"]) == 300
    for key in ("keypoints", "scores", "descriptors"):
        torch.testing.assert_close(g[key], ref[key])
    if name == "rootsift":
        assert (g["descriptors"] >= 0).all()


def test_upright_sets_every_orientation_to_zero(texture):
    """Upright descriptors are those OpenCV computes at the same keypoints with angle 0."""
    g = Handcrafted({"upright": True})(to_tensor(texture))
    gray = np.clip(np.round(cv2.cvtColor(texture, cv2.COLOR_RGB2GRAY) * 255), 0, 255).astype(np.uint8)
    sift = cv2.SIFT_create(enable_precise_upscale=True)
    kps = [k for k in sift.detect(gray, None)]
    by_xy = {(round(k.pt[0], 3), round(k.pt[1], 3)): k for k in kps}
    k0 = by_xy[tuple(round(float(v), 3) for v in g["keypoints"][0])]
    _, d = sift.compute(gray, [cv2.KeyPoint(k0.pt[0], k0.pt[1], k0.size, 0.0, k0.response, k0.octave)])
    np.testing.assert_allclose(g["descriptors"][0].numpy(), d[0] / np.linalg.norm(d[0]), atol=1e-5)
    assert len(np.unique(g["keypoints"].numpy(), axis=0)) == len(g["keypoints"])  # orientation duplicates merged


def test_batch_pads_and_matches_single_calls(texture):
    g = Handcrafted({"max_keypoints": 200})
    images = torch.stack([to_tensor(texture)[0], to_tensor(texture[:, ::-1].copy())[0], torch.full((3, 240, 320), 0.5)])
    out = g.batch(images, threads=3)
    assert out["keypoints"].shape == (3, 200, 2) and out["descriptors"].shape == (3, 200, 128)
    assert out["mask"].sum(1).tolist() == [200, 200, 0]
    single = g(images[1:2])
    torch.testing.assert_close(out["keypoints"][1], single["keypoints"])
    torch.testing.assert_close(out["descriptors"][1], single["descriptors"])
    torch.testing.assert_close(g.batch(images, threads=1)["descriptors"], out["descriptors"])


def test_surf_and_unknown_descriptors_fail_clearly():
    with pytest.raises(ConfigError, match="orb"):
        Handcrafted({"name": "orb"})
    if getattr(getattr(cv2, "xfeatures2d", None), "SURF_create", None) is None:
        with pytest.raises(ConfigError, match="xfeatures2d"):
            Handcrafted({"name": "surf"})


@pytest.mark.parametrize("feature,handcrafted", [("residual-sift", {"name": "sift", "upright": False}), ("residual-rootsift-upright", {"name": "rootsift", "upright": True})])
def test_keypoints_are_exactly_sifts_and_descriptors_unit_256d(feature, handcrafted, texture, tmp_path):
    path, net = _model_file(tmp_path / "m.pt", handcrafted)
    ext = load_extractor(feature, checkpoint=str(path), max_keypoints=250)
    pred = ext.extract(texture)
    ref = load_extractor(handcrafted["name"], upright=handcrafted["upright"], max_keypoints=250).extract(texture)
    assert torch.equal(pred["keypoints"], ref["keypoints"]) and torch.equal(pred["scores"], ref["scores"])
    n = len(ref["keypoints"])
    assert n == 250 and pred["descriptors"].shape == (n, 256)
    torch.testing.assert_close(pred["descriptors"].norm(dim=1), torch.ones(n))
    # the descriptor is the network applied to g's output
    expected = net({"image": to_tensor(texture), "keypoints": ref["keypoints"][None], "handcrafted": ref["descriptors"][None]})
    torch.testing.assert_close(pred["descriptors"], expected["descriptors"][0], atol=1e-5, rtol=1e-5)


def test_ablation_checkpoint_and_empty_image(texture, tmp_path):
    path, _ = _model_file(tmp_path / "cnn.pt", {"name": "sift", "upright": False}, mode="cnn", cnn={**SMALL_CNN, "dim": 256})
    ext = load_extractor("residual-sift", checkpoint=str(path))
    assert ext.extract(texture)["descriptors"].shape[1] == 256
    empty = ext.extract(np.full((64, 80), 0.5, np.float32))
    assert empty["keypoints"].shape == (0, 2) and empty["descriptors"].shape == (0, 256)


def test_generic_feature_takes_g_from_the_model_file(texture, tmp_path):
    path, _ = _model_file(tmp_path / "m.pt", {"name": "rootsift", "upright": True})
    for ext in (load_extractor("residual", checkpoint=str(path), max_keypoints=100), load_extractor(str(path), max_keypoints=100)):
        assert isinstance(ext, ResidualFeatures) and ext.g.conf["name"] == "rootsift" and ext.g.conf["upright"]
        ref = load_extractor("rootsift", upright=True, max_keypoints=100).extract(texture)
        assert torch.equal(ext.extract(texture)["keypoints"], ref["keypoints"])
    with pytest.raises(WeightsError, match="needs the option checkpoint"):
        load_extractor("residual")


def test_weight_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(ResidualSIFT, "model_file", "no_such_model.pt")
    with pytest.raises(WeightsError, match="not shipped yet"):
        load_extractor("residual-sift")
    path, _ = _model_file(tmp_path / "m.pt", {"name": "rootsift", "upright": True})
    with pytest.raises(WeightsError, match="rootsift-upright"):
        load_extractor("residual-sift", checkpoint=str(path))
    with pytest.raises(WeightsError, match="no such model file"):
        load_extractor("residual-sift", checkpoint=str(tmp_path / "missing.pt"))
    save_model_file(tmp_path / "other.pt", method="hndesc", conf={}, state_dict={}, meta={})
    with pytest.raises(WeightsError, match="hndesc"):
        load_extractor("residual-sift", checkpoint=str(tmp_path / "other.pt"))
