import torch
import torch.nn.functional as F

from selfdesc.models.vgg import VGGBackbone, edge_mask, hard_detection, pad_to_multiple, soft_detection


def _soft_detection_reference(x):
    """Loop version of D2-Net's soft detection (spec §6.2a)."""
    y = F.relu(x)
    B, C, h, w = y.shape
    out = torch.zeros(B, 1, h, w, dtype=y.dtype)
    for b in range(B):
        e = torch.exp(y[b] / y[b].max())
        for i in range(h):
            for j in range(w):
                window = 0.0
                for di in (-1, 0, 1):
                    for dj in (-1, 0, 1):
                        ii, jj = i + di, j + dj
                        window = window + (e[:, ii, jj] if 0 <= ii < h and 0 <= jj < w else torch.ones(C, dtype=y.dtype))
                alpha = e[:, i, j] / window
                beta = y[b, :, i, j] / max(float(y[b, :, i, j].max()), 1e-8)  # 0 where every channel is <= 0
                out[b, 0, i, j] = (alpha * beta).max()
    return out


def test_soft_detection_known_answer():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    s = soft_detection(x)
    assert torch.allclose(s, _soft_detection_reference(x), atol=1e-12)
    assert s.min() >= 0 and s.max() <= 1


def test_edge_mask_blob_vs_ridge():
    ys, xs = torch.meshgrid(torch.arange(15.0), torch.arange(15.0), indexing="ij")
    blob = torch.exp(-((xs - 7) ** 2 + (ys - 7) ** 2) / 8)[None, None]
    ridge = torch.exp(-((xs - 7) ** 2) / 8 - ((ys - 7) ** 2) / 800)[None, None]
    assert edge_mask(-blob, 5.0)[0, 0, 7, 7]  # a minimum of -blob: det > 0, isotropic
    assert not edge_mask(-ridge, 5.0)[0, 0, 7, 7]  # strongly anisotropic curvature: an edge
    assert edge_mask(-blob, 10.0, dilation=3)[0, 0, 7, 7]


def test_hard_detection_finds_a_peak():
    ys, xs = torch.meshgrid(torch.arange(12.0), torch.arange(12.0), indexing="ij")
    maps = torch.zeros(1, 4, 12, 12)
    maps[0, 2] = torch.exp(-((xs - 8) ** 2 + (ys - 3) ** 2) / 4)
    det = hard_detection(maps)
    assert det[0, 0, 3, 8]
    assert det.sum() >= 1
    # the peak of channel 2 sits on a ridge of channel 1 that dominates: no detection there
    maps[0, 1] = 2 * torch.exp(-((xs - 8) ** 2) / 4)
    assert not hard_detection(maps)[0, 0, 3, 8]


def test_backbone_shapes_and_layers():
    net = VGGBackbone().eval()
    assert [i for i, m in enumerate(net.features) if isinstance(m, torch.nn.Conv2d)] == [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]
    out = net(torch.rand(1, 3, 50, 66))
    assert out["features"].shape == (1, 512, 7, 9)  # padded to 56 x 72, stride 8
    assert out["scores"].shape == (1, 1, 7, 9)
    dense = VGGBackbone({"dense": True}).eval()
    dense.load_state_dict(net.state_dict())  # same weights
    out = dense(torch.rand(1, 3, 48, 64))
    assert out["features"].shape == (1, 512, 12, 16) and dense.stride == 4 and dense.offset == 1.5
    assert pad_to_multiple(torch.rand(1, 3, 48, 64), 8).shape == (1, 3, 48, 64)
