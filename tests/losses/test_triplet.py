"""Hardest-negative triplet loss: known values, margin, masks."""
from __future__ import annotations

import math

import pytest
import torch

from selfdesc.errors import ConfigError
from selfdesc.losses import TripletConfig, TripletLoss

E0, E1 = [1.0, 0.0], [0.0, 1.0]


def test_zero_when_margin_is_satisfied() -> None:
    query = torch.tensor([E0])
    out = TripletLoss()(query, torch.tensor([E0]), torch.tensor([[[-1.0, 0.0], E1]]))  # d+ = 0, hardest d- = sqrt 2
    assert out["loss"].item() == pytest.approx(0.0, abs=1e-6)
    assert out["active"].item() == 0


def test_hardest_negative_value_plain_and_squared() -> None:
    query = torch.tensor([E0])
    positive = torch.tensor([[0.5, math.sqrt(0.75)]])  # d+ = 1
    negatives = torch.tensor([[[-1.0, 0.0], E1]])  # d- = 2 and sqrt 2: hardest is sqrt 2
    plain = TripletLoss()(query, positive, negatives)
    assert plain["loss"].item() == pytest.approx(1 - math.sqrt(2) + 1, abs=1e-6)
    assert plain["active"].item() == 1
    squared = TripletLoss(TripletConfig(margin=1.5, squared=True))(query, positive, negatives)
    assert squared["loss"].item() == pytest.approx(1 - 2 + 1.5, abs=1e-6)
    # masking the hardest one leaves d- = 2: 1 - 2 + 1 = 0
    masked = TripletLoss()(query, positive, negatives, neg_mask=torch.tensor([[True, False]]))
    assert masked["loss"].item() == pytest.approx(0.0, abs=1e-6)


def test_queries_without_negatives_and_bad_margin() -> None:
    query = torch.tensor([E0, E0], requires_grad=True)
    out = TripletLoss()(query, torch.tensor([E1, E1]), torch.tensor([[E0], [E0]]), torch.tensor([[True], [False]]))
    assert out["num_queries"].item() == 1
    assert out["loss"].item() == pytest.approx(math.sqrt(2) - 0 + 1, abs=1e-5)
    out["loss"].backward()
    assert torch.isfinite(query.grad).all()
    with pytest.raises(ConfigError, match="margin"):
        TripletConfig(margin=-1)
