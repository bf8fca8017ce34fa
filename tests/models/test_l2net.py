from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.errors import ConfigError, WeightsError
from selfdesc.models.l2net import QuadL2Net, quad_l2net_plan, remap_r2d2_state_dict
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def r2d2_file() -> Path:
    return shared_path("weights/r2d2/r2d2_WASF_N16.pt")


@pytest.fixture(scope="module")
def net(r2d2_file: Path) -> QuadL2Net:
    return QuadL2Net.from_r2d2_checkpoint(r2d2_file).eval()


def test_plan_matches_the_spec_table() -> None:
    plan = quad_l2net_plan(mchan=4, dim=128, final_relu=False)
    assert [p["out"] for p in plan] == [32, 32, 64, 64, 128, 128, 128, 128, 128]
    assert [p["kernel"] for p in plan] == [3] * 6 + [2] * 3
    assert [p["dilation"] for p in plan] == [1, 1, 1, 2, 2, 4, 4, 8, 16]
    assert [p["bn"] for p in plan] == [True] * 8 + [False]
    assert [p["relu"] for p in plan] == [True] * 6 + [False] * 3
    assert quad_l2net_plan(4, 128, final_relu=True)[-1]["relu"]


def test_r2d2_checkpoint_loads_strictly(r2d2_file: Path, net: QuadL2Net) -> None:
    state = torch.load(r2d2_file, map_location="cpu", weights_only=True)["state_dict"]
    remapped = remap_r2d2_state_dict(state, net.plan)
    assert set(remapped) == set(net.state_dict())
    net.load_state_dict(remapped, strict=True)
    # R2D2's flat ops list: layers 1-6 are conv/BN/ReLU (ops 0-17), layers 7-8 conv/BN, layer 9 conv only
    assert torch.equal(net.trunk[6].conv.weight, state["module.ops.18.weight"])
    assert torch.equal(net.trunk[7].bn.running_mean, state["module.ops.21.running_mean"])
    assert torch.equal(net.trunk[8].conv.bias, state["module.ops.22.bias"])
    assert torch.equal(net.repeatability_head.bias, state["module.sal.bias"])
    assert all(not m.affine for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert sum(p.numel() for p in net.parameters()) == 484_387  # "0.5M" in the R2D2 README


def test_big_checkpoint(r2d2_file: Path) -> None:
    big = QuadL2Net.from_r2d2_checkpoint(r2d2_file.with_name("r2d2_WASF_N8_big.pt"))
    assert big.conf["mchan"] == 6
    assert sum(p.numel() for p in big.parameters()) == 1_038_899  # "1.0M"


def test_bad_checkpoints(r2d2_file: Path, tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="faster2d2_WASF_N16.pt"):
        QuadL2Net.from_r2d2_checkpoint(r2d2_file.with_name("faster2d2_WASF_N16.pt"))
    ckpt = torch.load(r2d2_file, map_location="cpu", weights_only=True)
    del ckpt["state_dict"]["module.ops.19.running_var"]
    torch.save(ckpt, tmp_path / "broken.pt")
    with pytest.raises(WeightsError, match=r"broken\.pt.*trunk\.6\.bn\.running_var"):
        QuadL2Net.from_r2d2_checkpoint(tmp_path / "broken.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pt"):
        QuadL2Net.from_r2d2_checkpoint(tmp_path / "junk.pt")


def test_outputs(net: QuadL2Net) -> None:
    img = torch.rand(2, 3, 37, 53)
    with torch.no_grad():
        out = net({"image": img})
        raw = net.features(img)
    assert out["descriptors"].shape == (2, 128, 37, 53)
    assert torch.allclose(out["descriptors"].norm(dim=1), torch.ones(2, 37, 53), atol=1e-5)
    assert out["reliability"].shape == out["repeatability"].shape == (2, 1, 37, 53)
    # section 3.1: heads on the element-wise square of the raw trunk output
    u_rel = F.conv2d(raw**2, net.reliability_head.weight, net.reliability_head.bias)
    assert torch.allclose(out["reliability"], torch.sigmoid(u_rel[:, 1:2] - u_rel[:, 0:1]), atol=1e-5)
    sp = F.softplus(F.conv2d(raw**2, net.repeatability_head.weight, net.repeatability_head.bias))
    assert torch.allclose(out["repeatability"], sp / (1 + sp), atol=1e-6)


def test_receptive_field_is_centred(net: QuadL2Net) -> None:
    """Output pixel (x, y) sees input pixels (x, y) +- 25: no half-pixel shift in the dense maps."""
    img = torch.rand(1, 3, 71, 71, requires_grad=True)
    net.features(img)[0, :, 30, 40].sum().backward()
    ys, xs = torch.nonzero(img.grad.abs().sum(dim=1)[0], as_tuple=True)
    assert (ys.min().item(), ys.max().item(), xs.min().item(), xs.max().item()) == (5, 55, 15, 65)


def test_hndesc_configuration() -> None:
    net = QuadL2Net(heads=False, final_relu=True).eval()
    out = net({"image": torch.rand(1, 3, 24, 24)})
    assert set(out) == {"descriptors"}
    assert (out["descriptors"] >= 0).all()
    assert not any("head" in k for k in net.state_dict())


def test_unknown_option() -> None:
    with pytest.raises(ConfigError, match="channels"):
        QuadL2Net(channels=3)
