import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.features.nms import top_k_peaks
from selfdesc.features.subpixel import quadratic_refine, refine_peaks, softargmax_refine, window_offsets, window_values


def _gaussian(x0, y0, size=(20, 30), sigma=1.5):
    H, W = size
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float64), torch.arange(W, dtype=torch.float64), indexing="ij")
    return torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma**2))[None, None].float()


def test_quadratic_recovers_a_subpixel_gaussian_peak():
    heat = _gaussian(10.3, 7.6)
    xy, _, valid = top_k_peaks(heat, 1, radius=2)
    assert valid.all() and xy[0, 0].tolist() == [10, 8]
    refined = quadratic_refine(heat, xy)[0, 0]
    assert (refined - torch.tensor([10.3, 7.6])).abs().max() < 0.05


def test_softargmax_known_answers():
    heat = torch.zeros(1, 1, 10, 12)
    heat[0, 0, 4, 6] = heat[0, 0, 4, 7] = 1.0  # two equal maxima: the midpoint, exactly
    xy, dispersion = softargmax_refine(heat, torch.tensor([[[6, 4]]]), radius=2, temperature=1e-3)
    assert torch.allclose(xy, torch.tensor([[[6.5, 4.0]]]), atol=1e-5) and torch.allclose(dispersion, torch.tensor([[0.25]]), atol=1e-5)
    flat = torch.ones(1, 1, 10, 12)  # a flat window: its centre, dispersion = 2 * var(-2..2) = 4
    xy, dispersion = softargmax_refine(flat, torch.tensor([[[5, 5]]]), radius=2, temperature=0.1)
    assert torch.allclose(xy, torch.tensor([[[5.0, 5.0]]])) and torch.allclose(dispersion, torch.tensor([[4.0]]))
    # at the corner only the 3x3 pixels inside the map count (offsets 0, 1, 2): mean offset (1, 1)
    xy, _ = softargmax_refine(flat, torch.tensor([[[0, 0]]]), radius=2, temperature=0.1)
    assert torch.allclose(xy, torch.tensor([[[1.0, 1.0]]]))


def test_softargmax_is_differentiable_and_moves_toward_mass():
    heat = torch.zeros(1, 1, 9, 9, requires_grad=True)
    xy, _ = softargmax_refine(heat, torch.tensor([[[4, 4]]]), radius=1, temperature=1.0)
    xy[0, 0, 0].backward()
    g = heat.grad[0, 0]
    assert g[4, 5] > 0 and g[4, 3] < 0 and g[0, 0] == 0  # raising the right neighbour moves x right; outside the window: 0


def test_window_values_order_and_border_fill():
    heat = torch.arange(20.0).view(1, 1, 4, 5)
    v = window_values(heat, torch.tensor([[[0, 1]]]), 1, fill=-1.0)[0, 0]
    assert v.tolist() == [-1, 0, 1, -1, 5, 6, -1, 10, 11]
    assert window_offsets(1)[[0, 4, 8]].tolist() == [[-1, -1], [0, 0], [1, 1]]


def test_shifted_texture_gives_shifted_keypoints(texture):
    # a shift-equivariant detector (blurred Laplacian magnitude); integer shift (dx, dy) = (7, 4)
    gray = torch.from_numpy(texture[:, :, 0]).float()[None, None]
    dx, dy = 7, 4
    shifted = torch.roll(gray, shifts=(dy, dx), dims=(2, 3))
    lap = torch.tensor([[0.0, 1, 0], [1, -4, 1], [0, 1, 0]]).view(1, 1, 3, 3)

    def detect(img, mode):
        heat = F.avg_pool2d(F.conv2d(img, lap, padding=1).abs(), 3, stride=1, padding=1)
        peaks, _, valid = top_k_peaks(heat, 100000, radius=2)
        return refine_peaks(heat, peaks[valid][None], mode)[0]

    H, W = gray.shape[-2:]
    for mode in ("softargmax", "quadratic"):
        a, b = detect(gray, mode) + torch.tensor([dx, dy]), detect(shifted, mode)
        inner = (a[:, 0] > 30) & (a[:, 0] < W - 30) & (a[:, 1] > 30) & (a[:, 1] < H - 30)  # away from the wrap-around
        a = a[inner]
        assert len(a) > 100 and (a - a.round()).abs().max() > 0.2  # many, really sub-pixel positions
        near = torch.cdist(a.double(), b.double()).min(1).values
        assert near.max() < 0.1, mode


def test_refine_modes():
    heat = _gaussian(5.25, 6.0)
    peak = torch.tensor([[[5, 6]]])
    assert refine_peaks(heat, peak, "none").tolist() == [[[5.0, 6.0]]]
    assert refine_peaks(heat, peak, "softargmax")[0, 0, 0] > 5.0
    with pytest.raises(ConfigError, match="softargmax"):
        refine_peaks(heat, peak, "centroid")
