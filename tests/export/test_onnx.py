"""ONNX export of dense networks: onnxruntime agrees with torch at sizes other than the traced one."""
from __future__ import annotations

import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.export.onnx import compare_onnx, export_features, export_network
from selfdesc.models.l2net import QuadL2Net

pytest.importorskip("onnx", reason="ONNX export needs the onnx package (pip install 'selfdesc[onnx]')")
pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime (pip install 'selfdesc[onnx]')")


def test_r2d2_network_matches_torch(tmp_path):
    torch.manual_seed(0)
    net = QuadL2Net()  # R2D2's network, random initialisation
    out = tmp_path / "r2d2.onnx"
    names = export_network(net, out, height=64, width=96)
    assert names == ["descriptors", "reliability", "repeatability"] and not net.training
    for h, w in [(64, 96), (75, 53)]:  # dynamic axes: another size than the traced one
        diffs = compare_onnx(out, net, torch.rand(1, 3, h, w))
        assert set(diffs) == set(names)
        assert max(diffs.values()) < 1e-4, diffs


def test_hndesc_model_file_exports(tmp_path):
    from selfdesc.weights import save_model_file

    backbone = {"name": "r2d2", "dim": 32, "mchan": 2, "final_relu": True, "heads": True}
    torch.manual_seed(1)
    state = QuadL2Net({k: v for k, v in backbone.items() if k != "name"}).state_dict()
    model = tmp_path / "hndesc.pt"
    save_model_file(model, method="hndesc", conf={"backbone": backbone}, state_dict=state, meta={})
    result = export_features(model, tmp_path / "hndesc.onnx")
    assert result["outputs"] == ["descriptors", "reliability", "repeatability"]
    assert max(result["max_abs_diff"].values()) < 1e-4, result


def test_lite_network_matches_torch_at_padded_sizes(tmp_path):
    # LiteNet pads its input to a multiple of its stride; traced at a size that needs no padding, the
    # pad must still be in the graph (it was not: 0.5-0.7 abs error at 200x264 before the fix)
    from selfdesc.models.litenet import LiteNet

    torch.manual_seed(0)
    net = LiteNet({"dim": 32, "kp_head": "dense", "antialias": True}).eval()
    out = tmp_path / "lite.onnx"
    names = export_network(net, out, height=64, width=96)
    assert names == ["descriptors", "heatmap", "reliability"]
    for h, w in [(64, 96), (75, 53), (50, 70)]:
        diffs = compare_onnx(out, net, torch.rand(1, 3, h, w))
        assert max(diffs.values()) < 1e-4, (h, w, diffs)


def test_handcrafted_features_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="feature 'sift' has no learned dense network"):
        export_features("sift", tmp_path / "s.onnx")
    assert not (tmp_path / "s.onnx").exists()
