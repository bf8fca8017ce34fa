"""Quantised AP (R2D2 / HNDesc): brute-force reference, gradients, hardest-K selection, reliability."""
from __future__ import annotations

import math

import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.losses import APLossConfig, HNDescAPLoss, quantized_ap, reliability_ap_loss, select_hardest, soft_bins


def reference_ap(pos: list[float], neg: list[float], num_bins: int, lo: float, hi: float) -> float:
    """Spec §2.8.1 written out with explicit loops over bins and items."""
    a = (num_bins - 1) / (hi - lo)

    def delta(k: int, x: float) -> float:
        c = hi - k / a
        if k == 0:
            return min(1.0, max(0.0, 1 - a * (c - x)))
        if k == num_bins - 1:
            return min(1.0, max(0.0, 1 - a * (x - c)))
        return max(0.0, 1 - a * abs(x - c))

    items = [(x, 1) for x in pos] + [(x, 0) for x in neg]
    n = [sum(delta(k, x) for x, _ in items) for k in range(num_bins)]
    r = [sum(delta(k, x) * y for x, y in items) for k in range(num_bins)]
    total_r = sum(r)
    ap, cum_n, cum_r = 0.0, 0.0, 0.0
    for k in range(num_bins):
        cum_n += n[k]
        cum_r += r[k]
        ap += cum_r / (cum_n + 1e-16) * r[k] / total_r
    return ap


@pytest.mark.parametrize("num_bins,sim_range", [(20, (0.0, 1.0)), (5, (-1.0, 1.0)), (20, (-1.0, 1.0))])
@pytest.mark.parametrize("num_pos", [1, 3])
def test_quantized_ap_matches_brute_force(num_bins: int, sim_range: tuple[float, float], num_pos: int) -> None:
    g = torch.Generator().manual_seed(num_bins + num_pos)
    lo, hi = sim_range
    span = hi - lo
    # a little outside the range too, to exercise the open end bins
    pos = lo - 0.1 * span + 1.2 * span * torch.rand(6, num_pos, generator=g, dtype=torch.float64)
    neg = lo - 0.1 * span + 1.2 * span * torch.rand(6, 9, generator=g, dtype=torch.float64)
    got = quantized_ap(pos, neg, num_bins, sim_range)
    for i in range(6):
        want = reference_ap(pos[i].tolist(), neg[i].tolist(), num_bins, lo, hi)
        assert abs(got[i].item() - want) < 1e-6


def test_soft_bins_partition_of_unity_and_centres() -> None:
    x = torch.tensor([-0.5, 0.0, 0.03, 0.5, 0.97, 1.0, 1.4], dtype=torch.float64)
    bins = soft_bins(x, 20, (0.0, 1.0))
    assert torch.allclose(bins.sum(-1), torch.ones(7, dtype=torch.float64))
    assert bins[0, -1] == 1 and bins[-1, 0] == 1  # open end bins
    c3 = 1 - 3 / 19  # centre of bin 3 gets weight 1
    assert soft_bins(torch.tensor([c3], dtype=torch.float64), 20)[0, 3].item() == pytest.approx(1.0)


def test_quantized_ap_gradcheck() -> None:
    g = torch.Generator().manual_seed(3)
    pos = (0.2 + 0.6 * torch.rand(2, generator=g, dtype=torch.float64)).requires_grad_()
    neg = (0.1 + 0.8 * torch.rand(2, 3, generator=g, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda p, n: quantized_ap(p, n, 5, (0.0, 1.0)), (pos, neg))


def unit_with_similarity(sims: torch.Tensor) -> torch.Tensor:
    """2-D unit vectors with the given similarities to (1, 0)."""
    return torch.stack([sims, (1 - sims**2).clamp(min=0).sqrt()], dim=-1)


def test_perfect_and_reversed_ordering() -> None:
    loss = HNDescAPLoss()
    query = torch.tensor([[1.0, 0.0]])
    good = loss(query, unit_with_similarity(torch.tensor([0.97])), unit_with_similarity(torch.full((1, 20), 0.3)))
    assert good["ap"].item() == pytest.approx(1.0, abs=1e-6)
    assert good["loss"].item() == pytest.approx(0.0, abs=1e-6)
    # positive and negatives on bin centres (1/19 and 18/19): hard assignment, positive ranked last of 21
    bad = loss(query, unit_with_similarity(torch.tensor([1 / 19])), unit_with_similarity(torch.full((1, 20), 18 / 19)))
    assert bad["ap"].item() == pytest.approx(1 / 21, abs=1e-6)
    assert bad["loss"].item() == pytest.approx(20 / 21, abs=1e-6)


def test_hndesc_loss_uses_the_k_hardest_negatives() -> None:
    g = torch.Generator().manual_seed(0)
    sims = torch.rand(4, 50, generator=g, dtype=torch.float64)
    pos = torch.rand(4, generator=g, dtype=torch.float64)
    query = torch.tensor([[1.0, 0.0]], dtype=torch.float64).expand(4, 2)
    out = HNDescAPLoss(APLossConfig(num_negatives=7))(query, unit_with_similarity(pos), unit_with_similarity(sims))
    want = quantized_ap(pos, sims.topk(7, dim=1).values)
    assert torch.allclose(out["ap_per_query"], want, atol=1e-12)
    assert out["loss"].item() == pytest.approx((1 - want).mean().item(), abs=1e-12)


def test_select_hardest_top_k_mask_and_padding() -> None:
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.7], [0.8, 0.2, 0.6, 0.4], [0.3, 0.2, 0.1, 0.0]])
    valid = torch.tensor([[True, True, True, True], [False, True, True, False], [False, False, False, False]])
    index, count = select_hardest(scores, valid, 3)
    assert index[0].tolist() == [1, 3, 2]
    assert index[1].tolist() == [2, 1, 1]  # only 2 valid: the weakest selected one repeats
    assert count.tolist() == [3, 2, 0]


def test_rows_without_negatives_are_left_out() -> None:
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = unit_with_similarity(torch.tensor([0.97, 0.1]))
    negatives = unit_with_similarity(torch.tensor([[0.3, 0.2], [0.9, 0.9]]))
    out = HNDescAPLoss()(query, positive, negatives, neg_mask=torch.tensor([[True, True], [False, False]]))
    assert out["num_queries"].item() == 1
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(out["ap_per_query"][1].item())


def test_config_range_follows_final_relu() -> None:
    assert APLossConfig().resolved_range == (0.0, 1.0)
    assert APLossConfig(final_relu=False).resolved_range == (-1.0, 1.0)
    assert APLossConfig(final_relu=False, sim_range=(0.0, 1.0)).resolved_range == (0.0, 1.0)
    assert (APLossConfig().num_bins, APLossConfig().num_negatives) == (20, 20)
    with pytest.raises(ConfigError, match="APLossConfig"):
        APLossConfig(num_bins=1)


def test_reliability_ap_loss_values_and_sign() -> None:
    ap = torch.tensor([0.9, 0.2])
    assert reliability_ap_loss(ap, torch.tensor([1.0, 0.0])).item() == pytest.approx((0.1 + 0.5) / 2)
    assert reliability_ap_loss(ap, torch.tensor([0.5, 0.5]), kappa=0.4).item() == pytest.approx(
        ((1 - 0.45 - 0.2) + (1 - 0.1 - 0.2)) / 2
    )
    # d loss / d R = kappa - AP: confident where AP > kappa, unreliable where AP < kappa
    rel = torch.tensor([0.5, 0.5], requires_grad=True)
    reliability_ap_loss(ap, rel, kappa=0.5).backward()
    assert rel.grad[0] < 0 < rel.grad[1]
    assert reliability_ap_loss(ap, rel, mask=torch.tensor([False, True])).item() == pytest.approx(1 - 0.1 - 0.25)


def test_hndesc_loss_with_reliability() -> None:
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = unit_with_similarity(torch.tensor([0.97, 0.1]))
    negatives = unit_with_similarity(torch.tensor([[0.3, 0.2], [0.9, 0.9]]))
    rel = torch.tensor([0.8, 0.3])
    out = HNDescAPLoss()(query, positive, negatives, reliability=rel)
    want = reliability_ap_loss(out["ap_per_query"], rel)
    assert out["loss"].item() == pytest.approx(want.item(), abs=1e-6)


def test_plain_weight_keeps_descriptor_gradient_when_reliability_is_zero() -> None:
    from selfdesc.losses.ap import APLossConfig, HNDescAPLoss

    g = torch.Generator().manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1).requires_grad_()
    p = torch.nn.functional.normalize(torch.randn(6, 8, generator=g), dim=-1)
    n = torch.nn.functional.normalize(torch.randn(6, 5, 8, generator=g), dim=-1)
    zero_r = torch.zeros(6)
    for weight, expect_grad in ((0.0, False), (1.0, True)):
        q.grad = None
        loss = HNDescAPLoss(APLossConfig(num_negatives=5, final_relu=False, plain_weight=weight))(q, p, n, reliability=zero_r)["loss"]
        loss.backward()
        assert (q.grad.abs().sum() > 0) == expect_grad
