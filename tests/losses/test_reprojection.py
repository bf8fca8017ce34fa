import torch

from selfdesc.losses.reprojection import reprojection_loss


def _translation(dx, dy):
    H = torch.eye(3)
    H[0, 2], H[1, 2] = dx, dy
    return H[None]


def _delta(points, size=(24, 32)):
    heat = torch.zeros(1, 1, *size)
    for x, y in points:
        heat[0, 0, y, x] = 1.0
    return heat


def test_known_answers_on_one_pixel_peaks():
    H = _translation(5, 3)
    a = _delta([(10, 7)])
    exact = reprojection_loss(a, _delta([(15, 10)]), H, num_peaks=1, radius=2, temperature=1e-3)
    assert exact["reprojection"] < 1e-4 and exact["dispersity"] < 1e-4 and exact["num_points"] == 2
    off = reprojection_loss(a, _delta([(16, 10)]), H, num_peaks=1, radius=2, temperature=1e-3)
    assert torch.allclose(off["reprojection"], torch.tensor(1.0), atol=1e-4)  # one pixel off, both ways
    # a peak that lands outside the other view (or its window) is not counted
    out = reprojection_loss(a, _delta([(15, 10)]), _translation(30, 0), num_peaks=1, radius=2, temperature=1e-3)
    assert out["num_points"] == 0 and out["reprojection"] == 0


def test_subpixel_shift_of_a_blob_is_measured():
    ys, xs = torch.meshgrid(torch.arange(24.0), torch.arange(32.0), indexing="ij")

    def blob(x0, y0):
        return torch.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / 2.0)[None, None]

    same = reprojection_loss(blob(10.3, 7.6), blob(15.3, 10.6), _translation(5, 3), num_peaks=1)
    assert same["reprojection"] < 1e-4  # the same blob, shifted by whole pixels: identical soft-argmax offsets
    moved = reprojection_loss(blob(10.3, 7.6), blob(15.7, 10.6), _translation(5, 3), num_peaks=1)
    # 0.4 px off; at temperature 0.1 the soft-argmax of a sigma-1 blob sits near its integer peak,
    # so the measured distance lies between the true 0.4 px and the 1 px between the integer peaks
    assert 0.4 <= moved["reprojection"] < 1.0


def test_gradients_reduce_the_loss():
    torch.manual_seed(0)
    H = _translation(3, 2)
    logits_a = torch.randn(1, 1, 24, 32, requires_grad=True)
    logits_b = torch.randn(1, 1, 24, 32, requires_grad=True)
    opt = torch.optim.Adam([logits_a, logits_b], lr=0.05)
    first = None
    for _ in range(60):
        out = reprojection_loss(torch.sigmoid(logits_a), torch.sigmoid(logits_b), H, num_peaks=16)
        loss = out["reprojection"] + out["dispersity"]
        if first is None:
            first = loss.item()
            loss.backward()
            assert torch.isfinite(logits_a.grad).all() and logits_a.grad.abs().sum() > 0 and logits_b.grad.abs().sum() > 0
            opt.zero_grad()
            continue
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first
