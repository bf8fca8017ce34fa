import math

import pytest
import torch
from torch import nn

from selfdesc.methods.parts.ema import ema_decay, ema_update_, make_target


def _net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 2, 1)).double()


def test_make_target_is_a_frozen_copy():
    torch.manual_seed(0)
    online = _net()
    target = make_target(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for t, o in zip(target.parameters(), online.parameters()):
        assert torch.equal(t, o) and t.data_ptr() != o.data_ptr()


@pytest.mark.parametrize("tau", [0.0, 0.3, 0.99, 1.0])
def test_update_is_exact(tau):
    torch.manual_seed(0)
    online = _net()
    target = make_target(online)
    with torch.no_grad():  # make the two differ, parameters and buffers
        for p in online.parameters():
            p.add_(torch.randn_like(p))
        online[1].running_mean.add_(1.5)
    before = [t.clone() for t in target.parameters()]
    ema_update_(target, online, tau)
    for t, t0, o in zip(target.parameters(), before, online.parameters()):
        expected = tau * t0 + (1 - tau) * o.detach()
        assert torch.allclose(t, expected, rtol=0, atol=1e-14)
        if tau == 1.0:
            assert torch.equal(t, t0)
        if tau == 0.0:
            assert torch.equal(t, o.detach())
    assert torch.equal(target[1].running_mean, online[1].running_mean)


def test_update_rejects_bad_tau():
    online = _net()
    with pytest.raises(ValueError):
        ema_update_(make_target(online), online, 1.5)


def test_decay_schedule():
    base, total = 0.99, 100
    taus = [ema_decay(s, total, base) for s in range(0, 121)]
    assert taus[0] == pytest.approx(base) and taus[total] == pytest.approx(1.0) and taus[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(taus, taus[1:]))
    assert taus[50] == pytest.approx(1 - (1 - base) * (math.cos(math.pi / 2) + 1) / 2)
    assert ema_decay(5, 0, base) == base
