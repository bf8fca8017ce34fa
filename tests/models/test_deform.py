import math

import pytest
import torch
import torch.nn.functional as F

from selfdesc.models.deform import ASLFeatBackbone, DeformConv2d, PeakinessDetector, deform_conv2d, resample_to_image, sample_map


@pytest.mark.parametrize("dilation", [1, 2])
def test_zero_offsets_equal_a_convolution(dilation):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 11, dtype=torch.float64)
    w, b = torch.randn(5, 3, 3, 3, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    off = torch.zeros(2, 18, 9, 11, dtype=torch.float64)
    ref = F.conv2d(x, w, b, padding=dilation, dilation=dilation)
    assert torch.allclose(deform_conv2d(x, off, w, b, dilation), ref, atol=1e-10)


def test_offsets_move_the_taps():
    torch.manual_seed(0)
    x = torch.randn(1, 2, 8, 10, dtype=torch.float64)
    w = torch.randn(3, 2, 3, 3, dtype=torch.float64)
    off = torch.zeros(1, 18, 8, 10, dtype=torch.float64)
    off[:, 1::2] = 1.0  # dx = +1 on every tap: reads x one pixel to the right
    shifted = F.pad(x[..., 1:], (0, 1))
    # column 0 differs: its left taps read x[0] there, the zero padding of `shifted` in the reference
    assert torch.allclose(deform_conv2d(x, off, w)[..., 1:], F.conv2d(shifted, w, padding=1)[..., 1:], atol=1e-10)
    off[:, 1::2] = 0.5  # half a pixel: the mean of the two (bilinear), away from the borders
    half = deform_conv2d(x, off, w)
    mean = 0.5 * (F.conv2d(x, w, padding=1) + F.conv2d(shifted, w, padding=1))
    assert torch.allclose(half[..., 1:-1], mean[..., 1:-1], atol=1e-10)


def test_deform_module_starts_as_conv_and_learns_offsets():
    torch.manual_seed(0)
    m = DeformConv2d(3, 4)
    x = torch.randn(1, 3, 7, 7)
    assert torch.allclose(m(x), F.conv2d(x, m.weight, m.bias, padding=1), atol=1e-5)
    m(x).square().sum().backward()
    assert m.offset.weight.grad.abs().sum() > 0


def test_sample_map_geometry():
    # a map whose cells hold the image x of their centres: stride * j + offset
    for stride, offset in [(4, 0.0), (4, 1.5), (2, 0.0), (1, 0.0)]:
        w = 6
        xs = torch.arange(w, dtype=torch.float64) * stride + offset
        maps = xs.view(1, 1, 1, w).expand(1, 1, 3, w).contiguous()
        pts = torch.tensor([[[offset + 0.0, 0.0], [offset + 2.5, 1.0], [offset + stride * 3.25, 2.0]]], dtype=torch.float64)
        assert torch.allclose(sample_map(maps, pts, stride, offset)[0, :, 0], pts[0, :, 0], atol=1e-9)
        full = resample_to_image(maps, (2, stride * (w - 1)), stride, offset)
        inner = torch.arange(full.shape[-1], dtype=torch.float64)
        ok = (inner >= offset) & (inner <= xs[-1])
        assert torch.allclose(full[0, 0, 0][ok], inner[ok], atol=1e-9)


def test_peakiness_level_score_and_moving_max():
    const = torch.full((1, 3, 5, 5), 2.0)
    assert torch.allclose(PeakinessDetector.level_score(const, 1), torch.full((1, 1, 5, 5), math.log(2) ** 2))
    det = PeakinessDetector([1], [1.0], decay=0.5)
    det.train()
    det([(const, 1, 0.0)], (5, 5))
    assert det.moving_max[0] == 2.0
    det([(2 * const, 1, 0.0)], (5, 5))
    assert det.moving_max[0] == 3.0
    det.eval()
    det([(10 * const, 1, 0.0)], (5, 5))
    assert det.moving_max[0] == 3.0


def test_aslfeat_backbone():
    torch.manual_seed(0)
    net = ASLFeatBackbone()
    out = net(torch.rand(2, 3, 30, 42))  # padded to 32 x 44
    assert out["features"].shape == (2, 128, 8, 11) and out["scores"].shape == (2, 1, 32, 44)
    assert torch.all(out["scores"] >= 0)
    (out["features"].square().mean() + out["scores"].mean()).backward()
    assert all(p.grad is not None for p in net.parameters())
    plain = ASLFeatBackbone({"deformable": False})
    assert not any(isinstance(m, DeformConv2d) for m in plain.modules())


def test_low_precision_inputs_sample_at_full_precision():
    """Sampling positions are computed in float32 even for bfloat16 maps (bf16 spacing at 40 is 0.25)."""
    maps = (torch.arange(64, dtype=torch.float32) * 4).view(1, 1, 1, 64).expand(1, 1, 2, 64).to(torch.bfloat16)
    pts = torch.tensor([[[161.3, 0.0]]])
    assert sample_map(maps, pts, 4, 0.0).item() == pytest.approx(161.3, abs=0.05)
    x = torch.arange(48, dtype=torch.float32).view(1, 1, 1, 48).expand(1, 1, 3, 48).contiguous()
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 1, 1] = 1.0  # the centre tap alone: output = input read at p + offset
    off = torch.zeros(1, 18, 3, 48)
    off[:, 9] = 0.3  # dx of the centre tap
    out = deform_conv2d(x.to(torch.bfloat16), off.to(torch.bfloat16), w.to(torch.bfloat16))
    assert out[0, 0, 1, 40].item() == pytest.approx(40.3, abs=0.01)  # 40.25 if the position were bf16
