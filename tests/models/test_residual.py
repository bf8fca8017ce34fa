import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.models.residual import ResidualNet
from selfdesc.models.sampling import sample_descriptors

SMALL_CNN = {"channels": [8, 8, 16, 16], "dim": 128}


def _inputs(b=2, n=7, size=(40, 48)):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(b, 3, *size, generator=g)
    kp = torch.rand(b, n, 2, generator=g) * torch.tensor([size[1] - 1, size[0] - 1])
    hand = F.normalize(torch.rand(b, n, 128, generator=g), dim=-1)
    return {"image": image, "keypoints": kp, "handcrafted": hand}


def test_concat_is_unit_norm_256d_and_h_half_is_the_sampled_cnn_map():
    torch.manual_seed(0)
    net = ResidualNet({"cnn": SMALL_CNN})
    data = _inputs()
    out = net(data)["descriptors"]
    assert out.shape == (2, 7, 256) and net.descriptor_dim == 256
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2, 7))
    maps = net.cnn({"image": data["image"]})["descriptors"]
    h = sample_descriptors(maps, data["keypoints"], stride=8)
    torch.testing.assert_close(F.normalize(out[..., 128:], dim=-1), h, atol=1e-5, rtol=1e-5)
    f = net.refine(data["handcrafted"])
    torch.testing.assert_close(F.normalize(out[..., :128], dim=-1), F.normalize(f, dim=-1), atol=1e-5, rtol=1e-5)


def test_gradients_reach_f_and_h_but_not_g():
    torch.manual_seed(0)
    net = ResidualNet({"cnn": SMALL_CNN})
    data = _inputs()
    data["handcrafted"].requires_grad_(True)
    target = F.normalize(torch.randn(2, 7, 256), dim=-1)
    (net(data)["descriptors"] * target).sum().backward()
    assert data["handcrafted"].grad is None
    for branch in (net.refine, net.cnn):
        grads = [p.grad for p in branch.parameters()]
        assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_ablation_modes_use_only_their_branch():
    torch.manual_seed(0)
    data = _inputs()
    other = {**data, "handcrafted": F.normalize(torch.rand(2, 7, 128), dim=-1), "image": torch.rand(2, 3, 40, 48)}
    cnn = ResidualNet({"mode": "cnn", "cnn": {**SMALL_CNN, "dim": 256}})
    assert cnn.refine is None and cnn.descriptor_dim == 256
    a, b = cnn(data)["descriptors"], cnn({**data, "handcrafted": other["handcrafted"]})["descriptors"]
    assert a.shape == (2, 7, 256)
    torch.testing.assert_close(a, b)  # g's descriptors are not used
    assert not torch.allclose(a, cnn({**data, "image": other["image"]})["descriptors"])
    refine = ResidualNet({"mode": "refine"})
    assert refine.cnn is None and refine.descriptor_dim == 128
    a = refine(data)["descriptors"]
    torch.testing.assert_close(a, refine({**data, "image": other["image"]})["descriptors"])
    torch.testing.assert_close(a.norm(dim=-1), torch.ones(2, 7))


def test_normalize_branches_gives_equal_halves():
    torch.manual_seed(0)
    net = ResidualNet({"cnn": SMALL_CNN, "normalize_branches": True})
    out = net(_inputs())["descriptors"]
    half = torch.full((2, 7), 2**-0.5)
    torch.testing.assert_close(out[..., :128].norm(dim=-1), half)
    torch.testing.assert_close(out[..., 128:].norm(dim=-1), half)


def test_no_keypoints_and_bad_options():
    net = ResidualNet({"cnn": SMALL_CNN})
    data = _inputs(n=0)
    assert net(data)["descriptors"].shape == (2, 0, 256)
    with pytest.raises(ConfigError, match="mode"):
        ResidualNet({"mode": "sum"})
    with pytest.raises(ConfigError, match="model.refine.width"):
        ResidualNet({"refine": {"width": 3}})
