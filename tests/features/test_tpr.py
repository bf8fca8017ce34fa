import numpy as np
import pytest
import torch
from torch import nn

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.features import load_extractor
from selfdesc.features.tpr import DEFAULT_MODEL, TPRFeatures
from selfdesc.methods.tpr import TPR
from selfdesc.weights import package_model, save_model_file

SWIN = {"name": "swin", "swin": {"embed_dim": 16, "num_heads": [1, 2], "window": 4, "dim": 32}}


def _model_file(tmp_path, backbone=SWIN):
    torch.manual_seed(0)
    m = TPR({"backbone": backbone})
    e = m.export()
    path = tmp_path / "tpr.pt"
    save_model_file(path, method="tpr", conf=e["conf"], state_dict=e["state_dict"], meta={})
    return path, m


def test_default_model_missing_is_a_weights_error(tmp_path, monkeypatch):
    import selfdesc.features.tpr as tpr_module

    monkeypatch.setattr(tpr_module, "package_model", lambda name: tmp_path / name)  # an install without the file
    with pytest.raises(WeightsError, match="not shipped"):
        load_extractor("tpr")


def test_shipped_model_extracts():
    assert package_model(DEFAULT_MODEL).is_file()
    f = load_extractor("tpr", max_keypoints=100).extract(np.random.default_rng(0).random((96, 128, 3)).astype(np.float32))
    assert f["keypoints"].shape[1] == 2 and f["descriptors"].shape[1] == 128
    assert torch.allclose(f["descriptors"].norm(dim=1), torch.ones(len(f["descriptors"])), atol=1e-4)


def test_extract_from_a_model_file(tmp_path):
    path, m = _model_file(tmp_path)
    ex = load_extractor(str(path), max_keypoints=50)  # the file's method picks the extractor
    assert isinstance(ex, TPRFeatures)
    image = torch.rand(1, 3, 45, 61)
    pred = ex.extract(image)
    kp, desc = pred["keypoints"], pred["descriptors"]
    assert 0 < len(kp) <= 50 and desc.shape == (len(kp), 32)
    assert torch.allclose(desc.norm(dim=1), torch.ones(len(kp)), atol=1e-5)
    assert kp.min() >= 4 and kp[:, 0].max() <= 60 - 4 and kp[:, 1].max() <= 44 - 4
    # same network as the online backbone of the method
    with torch.no_grad():
        ref = m.online.backbone.eval()(image)["features"]
        assert torch.allclose(ex.net(image)["features"], ref, atol=1e-5)


def test_training_checkpoint_is_read(tmp_path):
    torch.manual_seed(0)
    conf = {"backbone": SWIN}
    m = TPR(conf)
    ckpt = {"model": m.state_dict(), "config": {"method": {"name": "tpr", **conf}}, "optimizer": {}, "step": 7}
    torch.save(ckpt, tmp_path / "last.pt")
    ex = TPRFeatures({"checkpoint": str(tmp_path / "last.pt")})
    for k, v in m.online.backbone.state_dict().items():
        assert torch.equal(ex.net.state_dict()[k], v)


class _Stub(nn.Module):
    """A backbone with fixed maps: one score peak and descriptors that encode their cell."""

    stride, offset, score_stride, score_offset, dim = 4, 1.5, 4, 1.5, 2

    def forward(self, image):
        h, w = 10, 12
        scores = torch.zeros(1, 1, h, w)
        scores[0, 0, 5, 7] = 1.0
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        return {"features": torch.stack([xs + 1, ys + 1])[None], "scores": scores}


def test_keypoint_and_descriptor_geometry(tmp_path):
    path, _ = _model_file(tmp_path)
    ex = TPRFeatures({"checkpoint": str(path), "score_threshold": 0.5})
    ex.net = _Stub()
    pred = ex({"image": torch.rand(1, 3, 40, 48)})
    assert pred["keypoints"].tolist() == [[4 * 7 + 1.5, 4 * 5 + 1.5]]  # cell centre, pixel-centre convention
    expected = torch.nn.functional.normalize(torch.tensor([[8.0, 6.0]]), dim=1)
    assert torch.allclose(pred["descriptors"], expected)


def test_options(tmp_path):
    path, _ = _model_file(tmp_path)
    with pytest.raises(ConfigError, match="hard"):
        TPRFeatures({"checkpoint": str(path), "detection": "hard"})
    vgg_path, _ = _model_file(tmp_path, {"name": "vgg"})
    ex = TPRFeatures({"checkpoint": str(vgg_path), "detection": "hard"})
    assert ex.net.stride == 4  # D2-Net's dense test-time network by default
    pred = ex.extract(torch.rand(1, 3, 48, 64))
    assert pred["descriptors"].shape[1] == 512
    assert TPRFeatures({"checkpoint": str(vgg_path), "vgg_dense": False}).net.stride == 8
