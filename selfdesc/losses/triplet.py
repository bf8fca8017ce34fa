"""Hardest-negative triplet (hinge) loss, the alternative to the AP loss."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.losses.hardest import select_hardest


@dataclass(frozen=True)
class TripletConfig:
    """Options of :class:`TripletLoss`.

    Attributes:
        margin: hinge margin; 1 with plain L2 distances in HNDesc's ``TripletCriterion``
            (``TripletMarginLoss(margin=1, p=2)``).
        squared: use squared L2 distances (one reading of the residual-descriptor paper's
            margin 2, spec §10.11).
    """

    margin: float = 1.0
    squared: bool = False

    def __post_init__(self) -> None:
        if not self.margin >= 0:
            raise ConfigError(f"TripletConfig: margin must be >= 0, got {self.margin}")


class TripletLoss(nn.Module):
    """``mean_i max(0, d(q_i, p_i) - d(q_i, n_i) + margin)`` with ``n_i`` the closest valid negative.

    Same inputs as :class:`~selfdesc.losses.ap.HNDescAPLoss`; queries without any valid
    negative are left out of the mean.
    """

    def __init__(self, config: TripletConfig | None = None) -> None:
        super().__init__()
        self.config = config or TripletConfig()

    def _distance(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        squared = ((a - b) ** 2).sum(dim=-1)
        return squared if self.config.squared else squared.clamp(min=1e-12).sqrt()

    def forward(
        self,
        query: torch.Tensor,
        positive: torch.Tensor,
        negatives: torch.Tensor,
        neg_mask: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss of a batch of queries.

        Args:
            query: ``(M, D)`` anchor descriptors.
            positive: ``(M, D)`` descriptors of their true correspondences.
            negatives: ``(M, N, D)`` negative pool per query.
            neg_mask: optional ``(M, N)`` bool, valid pool entries.

        Returns:
            ``loss`` (scalar), ``active`` (fraction of used queries with a non-zero hinge),
            ``num_queries`` (long).
        """
        d_pos = self._distance(query, positive)
        d_neg = self._distance(query[:, None], negatives)  # (M, N)
        index, count = select_hardest(-d_neg.detach(), neg_mask, 1)
        used = count > 0
        hinge = (d_pos[used] - d_neg[used].gather(1, index[used])[:, 0] + self.config.margin).clamp(min=0)
        n = max(hinge.numel(), 1)
        return {
            "loss": hinge.sum() / n,
            "active": (hinge > 0).sum().float() / n,
            "num_queries": used.sum(),
        }
