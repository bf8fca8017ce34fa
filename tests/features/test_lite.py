"""HNDesc-lite extraction: output format, routing of model files, sub-pixel keypoints, shift covariance,
and (once the model ships) matching accuracy of the shipped model."""
from pathlib import Path

import numpy as np
import pytest
import torch

import selfdesc
from selfdesc.errors import WeightsError
from selfdesc.eval.mma import match_errors
from selfdesc.features import extractor_class, load_extractor
from selfdesc.features.lite import DEFAULT_MODEL, HNDescLite, backbone_conf
from selfdesc.matching import match_mnn
from selfdesc.methods.hndesc import HNDesc
from selfdesc.models.litenet import LiteNet
from selfdesc.weights import package_model, read_model_file, save_model_file
from tests.features.conftest import astronaut_pair


@pytest.fixture(scope="module")
def lite_file(tmp_path_factory):
    """A model file of a randomly initialised 32-D lite network with the dense keypoint head and
    anti-aliasing, as configs/hndesc_lite_v2.yaml (BatchNorm statistics from a few batches)."""
    torch.manual_seed(0)
    method = HNDesc({"backbone": {"name": "lite", "dim": 32, "antialias": True}})
    method.net.train()
    with torch.no_grad():
        for _ in range(3):
            method.net({"image": torch.rand(2, 3, 64, 64)})
    path = tmp_path_factory.mktemp("lite") / "lite.pt"
    exported = method.export()
    save_model_file(path, method="hndesc", conf=exported["conf"], state_dict=exported["state_dict"], meta={"step": 0})
    return path


def test_model_files_route_to_the_lite_extractor_and_extract_a_warped_pair(lite_file):
    image0, image1, _ = astronaut_pair()
    for ext in (load_extractor(str(lite_file), max_keypoints=300), selfdesc.load(lite_file, max_keypoints=300)):
        assert isinstance(ext, HNDescLite)
        for image in (image0, image1):
            f = ext.extract(image)
            kp, desc, scores = f["keypoints"], f["descriptors"], f["scores"]
            n = len(kp)
            assert 50 < n <= 300 and kp.shape == (n, 2) and desc.shape == (n, 32) and scores.shape == (n,)
            assert f["image_size"].tolist() == [320, 240]
            assert torch.allclose(desc.norm(dim=1), torch.ones(n), atol=1e-4)
            assert (kp >= 4 - 2.01).all() and (kp[:, 0] <= 320 - 5 + 2.01).all() and (kp[:, 1] <= 240 - 5 + 2.01).all()  # border 4, window 2
            assert (kp - kp.round()).abs().max() > 0.01  # sub-pixel
            assert (scores[:-1] >= scores[1:]).all() and (scores >= 0.005).all()


def test_refine_none_gives_the_integer_peaks_and_refinement_stays_in_the_window(lite_file):
    image0, _, _ = astronaut_pair()
    raw = load_extractor(str(lite_file), max_keypoints=200, refine="none").extract(image0)
    soft = load_extractor(str(lite_file), max_keypoints=200).extract(image0)
    assert torch.equal(raw["keypoints"], raw["keypoints"].round())
    assert torch.equal(raw["scores"], soft["scores"])
    assert (soft["keypoints"] - raw["keypoints"]).abs().max() <= 2.0  # offsets within the 5x5 window


def _shifted(ext, texture, shifts):
    """Per circular shift ``(dx, dy)`` of ``texture``: the keypoints of the original image moved by the shift and
    kept 40 px away from the wrapped border (strongest first), and each one's distance to the nearest keypoint of
    the shifted image."""
    image = torch.from_numpy(texture).permute(2, 0, 1)
    H, W = texture.shape[:2]
    f0 = ext.extract(image)
    for dx, dy in shifts:
        f1 = ext.extract(torch.roll(image, shifts=(dy, dx), dims=(1, 2)))
        kp0 = f0["keypoints"] + torch.tensor([dx, dy])
        kp0 = kp0[(kp0[:, 0] > dx + 40) & (kp0[:, 0] < W - 40) & (kp0[:, 1] > dy + 40) & (kp0[:, 1] < H - 40)]
        yield dx, dy, kp0, torch.cdist(kp0.double(), f1["keypoints"].double()).min(1).values


def test_keypoints_of_a_shifted_image_shift_by_the_same_amount(lite_file, texture):
    # a circular shift keeps the per-image normalisation. Compared: the 100 strongest points away
    # from the wrapped border. Shifts by multiples of the encoder stride (16) are exact for the
    # network. Other shifts move the 1/8 reliability and the encoder context relative to the image,
    # which changes the heatmap by about 1 % (tests/models/test_litenet.py) and on this random network
    # swaps a few near-tied peaks: measured 90-94 % of the points within 0.1 px (median 0.003-0.005 px)
    ext = load_extractor(str(lite_file), max_keypoints=None, detection_threshold=0.0)
    for dx, dy, kp0, near in _shifted(ext, texture, [(16, 0), (48, 32), (1, 0), (3, 2), (5, 7)]):
        kp0, near = kp0[:100], near[:100]
        assert len(kp0) == 100 and (kp0 - kp0.round()).abs().max() > 0.05
        if dx % 16 == 0 and dy % 16 == 0:
            assert near.max() < 0.1, (dx, dy)
        else:
            assert (near < 0.1).float().mean() >= 0.85 and near.median() < 0.02, (dx, dy)


def test_dense_model_file_round_trip(lite_file):
    model = read_model_file(lite_file, method="hndesc")
    conf = backbone_conf(model["conf"], lite_file)
    assert conf["kp_head"] == "dense" and conf["antialias"] is True and conf["dim"] == 32
    net = LiteNet(conf)
    net.load_state_dict(model["state_dict"])
    ext = load_extractor(str(lite_file))
    assert ext.net.conf == net.conf
    x = torch.rand(1, 3, 50, 70)
    with torch.no_grad():
        want, got = net.eval()({"image": x}), ext.net({"image": x})  # the extractor's network has BatchNorm folded in
    for key in ("heatmap", "reliability", "descriptors"):
        assert torch.allclose(want[key], got[key], atol=1e-5), key


def test_files_without_kp_head_are_cell_models(tmp_path, texture):
    # model files written before kp_head existed (round 5): cell weights, no kp_head / antialias keys
    torch.manual_seed(0)
    cell = HNDesc({"backbone": {"name": "lite", "dim": 32, "kp_head": "cell"}}).export()
    conf = {k: v for k, v in cell["conf"]["backbone"].items() if k not in ("kp_head", "antialias", "local_dim")}
    path = tmp_path / "old.pt"
    save_model_file(path, method="hndesc", conf={"backbone": conf}, state_dict=cell["state_dict"], meta={})
    ext = load_extractor(str(path), max_keypoints=100)
    assert ext.net.conf["kp_head"] == "cell" and ext.net.conf["antialias"] is False
    assert len(ext.extract(texture)["keypoints"]) == 100
    shipped_round5 = Path(__file__).resolve().parents[2] / "training-runs" / "round5" / "models" / "lite_best.pt"
    if shipped_round5.is_file():  # the real round-5 file
        assert load_extractor(str(shipped_round5)).net.conf["kp_head"] == "cell"


def test_wrong_model_files_are_clear_errors(lite_file, tmp_path, monkeypatch):
    with pytest.raises(WeightsError, match="r2d2 backbone"):
        load_extractor("hndesc", checkpoint=str(lite_file))
    r2d2 = HNDesc({"backbone": {"mchan": 1, "dim": 32}}).export()
    path = tmp_path / "r2d2.pt"
    save_model_file(path, method="hndesc", conf=r2d2["conf"], state_dict=r2d2["state_dict"], meta={})
    with pytest.raises(WeightsError, match="lite backbone"):
        load_extractor("hndesc-lite", checkpoint=str(path))
    import selfdesc.features.lite as lite_module

    monkeypatch.setattr(lite_module, "package_model", lambda name: tmp_path / name)
    with pytest.raises(WeightsError, match="not installed"):
        load_extractor("hndesc-lite")


def test_default_is_the_shipped_lite_model_and_matches_a_warped_pair():
    # Issue 11's bar for the shipped default: MMA@3 >= 0.90 and MMA@1 >= 0.60 on a warped pair (round 7
    # model, 6,000 GPU steps: measured 0.937 / 0.834, 615 matches; the round-6 model had 0.869 / 0.766).
    assert package_model(DEFAULT_MODEL).is_file()
    assert extractor_class("default") is extractor_class("hndesc-lite")
    image0, image1, H = astronaut_pair()
    ext = load_extractor("default", max_keypoints=1000)
    f0, f1 = ext.extract(image0), ext.extract(image1)
    matches, _ = match_mnn(f0["descriptors"], f1["descriptors"])
    errors = match_errors(f0["keypoints"].numpy(), f1["keypoints"].numpy(), np.asarray(matches), H)
    errors = np.where(np.isfinite(errors), errors, np.inf)
    assert len(matches) > 100
    assert (errors <= 3.0).mean() >= 0.90 and (errors <= 1.0).mean() >= 0.60


def test_shipped_model_keypoints_follow_a_shift(texture):
    # issue 11: keypoints of a shifted image shift by the same amount, at shifts that are not multiples
    # of the encoder stride: the median error is below 0.1 px and >= 85 % of the points land within 1 px
    # (round 6 model: medians 0.04-0.08 px, 91-95 % within 1 px, 63-90 % within 0.1 px; the round-5
    # cell-head model had 5 % within 1 px at a (2, 2) shift on graf, RESULTS §16a).
    if not package_model(DEFAULT_MODEL).is_file():
        pytest.skip(f"the HNDesc-lite model selfdesc/weights/{DEFAULT_MODEL} is not installed")
    ext = load_extractor("hndesc-lite", max_keypoints=300)
    for dx, dy, kp0, near in _shifted(ext, texture, [(1, 0), (2, 2), (3, 2), (5, 7)]):
        assert len(kp0) >= 50
        assert near.median() < 0.1 and (near < 1.0).float().mean() >= 0.85, (dx, dy)
