"""Ground-truth assignment from a homography, and the assignment NLL."""
import math

import torch

from selfdesc.methods.parts.assignment import IGNORE, UNMATCHED, assignment_nll, homography_assignment


def _warp(H, pts):
    hom = torch.cat([pts, torch.ones(len(pts), 1, dtype=pts.dtype)], 1) @ H.T
    return hom[:, :2] / hom[:, 2:]


def _known_warp():
    a = math.radians(20)
    H = torch.tensor([[1.2 * math.cos(a), -1.2 * math.sin(a), 30.0], [1.2 * math.sin(a), 1.2 * math.cos(a), -10.0], [1e-4, -2e-4, 1.0]], dtype=torch.float64)
    gy, gx = torch.meshgrid(torch.arange(8) * 20.0 + 10, torch.arange(8) * 20.0 + 10, indexing="ij")
    kp0 = torch.stack([gx.flatten(), gy.flatten()], 1).double()  # 64 points 20 px apart
    return H, kp0


def test_exact_on_a_known_warp():
    H, kp0 = _known_warp()
    g = torch.Generator().manual_seed(0)
    perm = torch.randperm(40, generator=g)
    warped = _warp(H, kp0[:40])[perm]  # points 0..39 have a partner, shuffled
    far = torch.tensor([[-500.0, -500.0], [900.0, 900.0]], dtype=torch.float64)  # nobody's partner
    near_miss = _warp(H, kp0[40:41]) + torch.tensor([[4.0, 0.0]], dtype=torch.float64)  # 4 px off: ambiguous
    offset = _warp(H, kp0[41:42]) + torch.tensor([[2.0, 0.0]], dtype=torch.float64)  # 2 px off: still a match
    kp1 = torch.cat([warped, far, near_miss, offset])
    gt0, gt1 = homography_assignment(kp0[None], kp1[None], H[None], positive_px=3.0, negative_px=5.0)
    gt0, gt1 = gt0[0], gt1[0]
    inverse = torch.argsort(perm)
    assert torch.equal(gt0[:40], inverse)  # kp0[i] <-> kp1[position of i in the shuffle]
    assert gt0[41] == 43 and gt1[43] == 41
    assert gt0[40] == IGNORE and gt1[42] == IGNORE  # between 3 and 5 px (both ways, scale 1.2)
    assert (gt0[42:] == UNMATCHED).all()
    assert (gt1[40:42] == UNMATCHED).all()
    for i, j in enumerate(gt0.tolist()):  # the two labellings agree
        if j >= 0:
            assert gt1[j] == i
    assert ((gt1 >= 0).sum() == (gt0 >= 0).sum() == 41)


def test_masks_and_empty_sets():
    H, kp0 = _known_warp()
    kp1 = _warp(H, kp0)
    mask1 = torch.ones(1, 64, dtype=torch.bool)
    mask1[0, 5] = False
    gt0, gt1 = homography_assignment(kp0[None], kp1[None], H[None], mask1=mask1)
    assert gt1[0, 5] == IGNORE and gt0[0, 5] == UNMATCHED
    assert torch.equal(gt0[0, :5], torch.arange(5))
    e0, e1 = homography_assignment(kp0[None], kp1[None, :0], H[None])
    assert e1.shape == (1, 0) and (e0 == UNMATCHED).all()


def test_nll_known_values():
    # one pair, N = M = 2: 0 <-> 1 matched, point 1 of image 0 unmatched, point 0 of image 1 ignored
    p = torch.tensor([[[0.1, 0.6, 0.3], [0.2, 0.1, 0.7], [0.5, 0.25, 0.0]]])
    scores = p.clamp_min(1e-12).log()
    gt0, gt1 = torch.tensor([[1, UNMATCHED]]), torch.tensor([[IGNORE, 0]])
    nll = assignment_nll(scores, gt0, gt1, balance=0.5)
    expected = 0.5 * -math.log(0.6) + 0.5 * -math.log(0.7)
    assert torch.allclose(nll, torch.tensor([expected]), atol=1e-6)
