import math

import pytest
import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.losses.tpr import (
    RAMPS,
    collapse_metrics,
    covariance_penalty,
    local_uniformity,
    prediction_loss,
    ramp,
    saliency_weights,
    soft_labels,
    uniform_weights,
    weighted_loss,
)


def _unit_pair(angles):
    """Unit vectors e0 and (cos a, sin a, 0, ...) for each angle."""
    a = torch.as_tensor(angles, dtype=torch.float64)
    y1 = torch.zeros(len(a), 8, dtype=torch.float64)
    y1[:, 0] = 1
    y2 = torch.zeros_like(y1)
    y2[:, 0], y2[:, 1] = torch.cos(a), torch.sin(a)
    return y1, y2


def test_soft_labels_identical_is_one_and_decreasing():
    y = F.normalize(torch.randn(5, 16, dtype=torch.float64), dim=-1)
    assert torch.allclose(soft_labels(y, y, alpha=3.0, lam=0.5), torch.ones(5, dtype=torch.float64), atol=1e-12)
    y1, y2 = _unit_pair(torch.linspace(0, math.pi, 9))
    labels = soft_labels(y1, y2, alpha=1.0, lam=1.0)
    assert torch.all(labels[1:] < labels[:-1])
    # known answer: cos = 0.5, alpha = 2, lambda = 0.5 -> exp(-2 * 0.5 / 0.5)
    y1, y2 = _unit_pair([math.pi / 3])
    assert soft_labels(y1, y2, alpha=2.0, lam=0.5).item() == pytest.approx(math.exp(-2.0))
    # alpha = 0 gives hard labels; larger alpha gives softer labels
    assert torch.allclose(soft_labels(y1, y2, 0.0, 1.0), torch.ones(1, dtype=torch.float64))
    assert soft_labels(y1, y2, 2.0, 1.0) < soft_labels(y1, y2, 1.0, 1.0)
    with pytest.raises(ConfigError):
        soft_labels(y1, y2, 1.0, 0.0)


def test_saliency_weights():
    s1 = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, 0.5, 0.0, 1.0]])
    s2 = torch.tensor([[1.0, 1.0, 2.0, 9.0], [2.0, 2.0, 1.0, 1.0]])
    mask = torch.tensor([[True, True, True, False], [False, False, False, False]])
    w = saliency_weights(s1, s2, mask)
    assert torch.allclose(w[0], torch.tensor([1.0, 2.0, 6.0, 0.0]) / 9.0)
    assert torch.all(w[1] == 0)
    u = uniform_weights(mask)
    assert torch.allclose(u[0], torch.tensor([1, 1, 1, 0]) / 3.0) and torch.all(u[1] == 0)


def test_weighted_loss_hard_and_soft():
    y1, y2 = _unit_pair([0.0, math.pi / 2, math.pi])  # similarities 1, 0, -1
    p, t = y1[None].float(), y2[None].float()
    w = torch.tensor([[0.5, 0.25, 0.25]])
    assert torch.allclose(prediction_loss(p, t), torch.tensor([[0.0, 1.0, 2.0]]), atol=1e-6)
    assert weighted_loss(p, t, w).item() == pytest.approx(0.25 * 1 + 0.25 * 2)
    # soft labels are the confidence of each positive: weights w_c l_c, renormalised
    labels = torch.tensor([[1.0, 0.5, 0.25]])  # w * l = 0.5, 0.125, 0.0625 (sum 0.6875)
    assert weighted_loss(p, t, w, labels).item() == pytest.approx((0.125 * 1 + 0.0625 * 2) / 0.6875)
    # all ones: the hard loss; a label scale does not change it
    assert weighted_loss(p, t, w, torch.ones(1, 3)).item() == pytest.approx(weighted_loss(p, t, w).item())
    assert weighted_loss(p, t, w, 0.3 * labels).item() == pytest.approx(weighted_loss(p, t, w, labels).item())
    # unlike the squared regression towards l_c, labels equal to the similarities do not zero the loss
    assert weighted_loss(p, t, w, torch.tensor([[1.0, 0.5, 0.1]])).item() == pytest.approx((0.125 * 1 + 0.025 * 2) / 0.65)
    # no gradient flows into the labels
    lab, pg = labels.clone().requires_grad_(True), p.clone().requires_grad_(True)
    weighted_loss(pg, t, w, lab).backward()
    assert pg.grad is not None and lab.grad is None


def test_local_uniformity_low_when_spread_zero_when_collapsed():
    d = 16
    spread = torch.eye(d)[None]  # orthogonal: every squared distance is 2
    assert local_uniformity(spread, t=2.0).item() == pytest.approx(-4.0, abs=1e-6)
    same = torch.ones(1, 8, d)
    assert local_uniformity(same).item() == pytest.approx(0.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    random = torch.randn(2, 64, d, generator=g)
    assert -4.0 < local_uniformity(random).item() < local_uniformity(random * 0.1 + 1.0).item() < 0.0


@pytest.mark.parametrize("shape", RAMPS)
def test_ramp_is_monotone(shape):
    values = [ramp(e, 0.2, 1.5, shape) for e in torch.linspace(-0.5, 1.5, 81).tolist()]
    assert all(b >= a for a, b in zip(values, values[1:]))
    assert values[-1] == pytest.approx(1.5)
    if shape != "constant":
        assert ramp(0.0, 0.2, 1.5, shape) == pytest.approx(0.2) and ramp(0.5, 0.2, 1.5, shape) == pytest.approx(0.85)
    decreasing = [ramp(e / 10, 1.0, 0.0, shape) for e in range(11)]
    assert all(b <= a for a, b in zip(decreasing, decreasing[1:]))
    with pytest.raises(ConfigError):
        ramp(0.5, 0.0, 1.0, "step")


def test_collapse_metrics():
    torch.manual_seed(0)
    spread = collapse_metrics(torch.randn(2000, 32))
    assert spread["desc_std"] > 0.95 and spread["eff_rank"] > 28
    collapsed = collapse_metrics(torch.randn(1, 32).expand(500, -1) + 1e-9 * torch.randn(500, 32))
    assert collapsed["desc_std"] < 1e-3
    line = collapse_metrics(torch.randn(500, 1) * torch.randn(1, 32))  # rank 1 (+/- one direction)
    assert line["eff_rank"] < 1.5


def test_covariance_penalty_small_when_decorrelated_large_when_rank_one():
    g = torch.Generator().manual_seed(0)
    spread = torch.randn(4096, 32, generator=g)
    assert covariance_penalty(spread) < 0.05  # only sampling noise, ~D/N
    line = torch.randn(4096, 1, generator=g) * torch.ones(1, 32) + 0.01 * torch.randn(4096, 32, generator=g)
    assert covariance_penalty(line) > 20.0  # rank 1: close to D - 1 = 31
    x = line.clone().requires_grad_(True)
    covariance_penalty(x).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # it pushes a collapsed set apart
    assert covariance_penalty(torch.ones(1, 32)) == 0.0
