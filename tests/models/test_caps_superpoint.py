import pytest
import torch

from selfdesc.errors import WeightsError
from selfdesc.models.caps import ResUNet
from selfdesc.models.sampling import sample_descriptors
from selfdesc.models.superpoint import SuperPointNet


def test_resunet_shapes_and_size():
    net = ResUNet().eval()
    with torch.no_grad():
        out = net({"image": torch.rand(1, 3, 66, 90)}, coarse=True)
    assert out["fine"].shape == (1, 128, 17, 23)
    assert out["coarse"].shape == (1, 128, 5, 6)
    n = sum(p.numel() for p in net.parameters())
    assert 18e6 < n < 22e6  # spec: about 8.5 M encoder + 11.8 M decoder


def test_resunet_encoder_weights_by_path(tmp_path):
    src = ResUNet()
    torch.nn.init.normal_(src.layer2[0].conv2.weight)
    enc = {k: v for k, v in src.state_dict().items() if k.split(".")[0] in ("conv1", "bn1", "layer1", "layer2", "layer3")}
    enc["fc.weight"] = torch.zeros(10, 2048)  # torchvision files carry a classifier: ignored
    torch.save(enc, tmp_path / "r50.pth")
    dst = ResUNet()
    dst.load_encoder_weights(tmp_path / "r50.pth")
    assert torch.equal(dst.layer2[0].conv2.weight, src.layer2[0].conv2.weight)
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError, match="bad.pth"):
        ResUNet().load_encoder_weights(tmp_path / "bad.pth")


def test_superpoint_shapes():
    net = SuperPointNet({"dim": 128, "gray": False, "detector": False})
    out = net({"image": torch.rand(2, 3, 64, 80)})
    assert set(out) == {"descriptors"} and out["descriptors"].shape == (2, 128, 8, 10)
    torch.testing.assert_close(out["descriptors"].norm(dim=1), torch.ones(2, 8, 10))
    full = SuperPointNet()
    o = full({"image": torch.rand(1, 1, 64, 80)})
    assert o["scores"].shape == (1, 1, 64, 80) and o["descriptors"].shape == (1, 256, 8, 10)
    half = SuperPointNet({"channels": (32, 32, 64, 64), "dim": 128})
    assert sum(p.numel() for p in half.parameters()) < sum(p.numel() for p in full.parameters())


def test_sample_descriptors_hits_cell_centres():
    desc = torch.randn(1, 4, 3, 5)
    s = 8
    # the centre of cell (row 1, col 2) is pixel (2*8 + 3.5, 1*8 + 3.5)
    kp = torch.tensor([[[2 * s + 3.5, 1 * s + 3.5], [0 * s + 3.5, 2 * s + 3.5]]])
    out = sample_descriptors(desc, kp, stride=s)
    expected = torch.nn.functional.normalize(torch.stack([desc[0, :, 1, 2], desc[0, :, 2, 0]]), dim=-1)
    torch.testing.assert_close(out[0], expected)
    # half-way between two cell centres is their average
    mid = sample_descriptors(desc, torch.tensor([[[1 * s + 3.5 + s / 2, 3.5]]]), stride=s)
    torch.testing.assert_close(mid[0, 0], torch.nn.functional.normalize(desc[0, :, 0, 1] + desc[0, :, 0, 2], dim=0))
