"""Differentiable quantised average precision (R2D2) and the HNDesc mined-negative AP loss.

Similarities are dot products of L2-normalised descriptors. AP is computed per query over
a short ranked list ``[positives..., negatives...]`` with the soft histogram of spec §2.8.1:
``Q`` triangular bins whose centres run from the top of the similarity range down to its
bottom, the two end bins open (everything above the range falls in bin 0, everything below
in bin ``Q - 1``).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from selfdesc.errors import ConfigError
from selfdesc.losses.hardest import select_hardest


def soft_bins(scores: torch.Tensor, num_bins: int = 20, sim_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Triangular soft assignment of similarities to ``num_bins`` bins (R2D2 ``APLoss``).

    With ``a = (Q - 1) / (hi - lo)`` and centres ``c_k = hi - k / a``:
    ``delta_k(x) = max(0, 1 - a |x - c_k|)`` for inner bins, and the end bins are open:
    ``delta_0(x) = clamp(1 - a (c_0 - x), 0, 1)``, ``delta_{Q-1}(x) = clamp(1 - a (x - c_{Q-1}), 0, 1)``.
    The assignments of one score sum to 1.

    Args:
        scores: ``(...)`` similarities.
        num_bins: ``Q >= 2``.
        sim_range: ``(lo, hi)`` with ``lo < hi``.

    Returns:
        ``(..., Q)`` bin weights, bin 0 = highest similarity.
    """
    lo, hi = float(sim_range[0]), float(sim_range[1])
    if num_bins < 2 or not lo < hi:
        raise ConfigError(f"quantized AP: need num_bins >= 2 and lo < hi, got {num_bins} bins on {sim_range}")
    a = (num_bins - 1) / (hi - lo)
    centres = hi - torch.arange(num_bins, dtype=scores.dtype, device=scores.device) / a
    x = scores.unsqueeze(-1)
    rising = 1 - a * (centres - x)  # flank for x below the centre
    falling = 1 - a * (x - centres)  # flank for x above the centre
    top = torch.zeros(num_bins, dtype=torch.bool, device=scores.device)
    bottom = top.clone()
    top[0], bottom[-1] = True, True
    falling = torch.where(top, torch.ones_like(falling), falling)  # bin 0 is open upwards
    rising = torch.where(bottom, torch.ones_like(rising), rising)  # bin Q-1 is open downwards
    return torch.minimum(rising, falling).clamp(min=0)


def quantized_ap(
    scores_pos: torch.Tensor,
    scores_neg: torch.Tensor,
    num_bins: int = 20,
    sim_range: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """Differentiable quantised AP of each query (spec §2.8.1).

    ``n_k`` / ``r_k`` = soft count of all / positive items in bin ``k``; precision
    ``P_k = cumsum(r)_k / (cumsum(n)_k + 1e-16)``, recall step ``r_k / sum(r)``, and
    ``AP = sum_k P_k r_k / sum(r)``.

    Args:
        scores_pos: ``(M,)`` or ``(M, P)`` similarities of each query to its positive(s), ``P >= 1``.
        scores_neg: ``(M, N)`` similarities to its negatives.
        num_bins: ``Q``.
        sim_range: ``(lo, hi)`` range covered by the bins.

    Returns:
        ``(M,)`` AP in ``[0, 1]``.
    """
    if scores_pos.dim() == 1:
        scores_pos = scores_pos[:, None]
    pos = soft_bins(scores_pos, num_bins, sim_range).sum(dim=1)  # (M, Q)
    count = pos + soft_bins(scores_neg, num_bins, sim_range).sum(dim=1)
    precision = pos.cumsum(dim=1) / (count.cumsum(dim=1) + 1e-16)
    return (precision * pos).sum(dim=1) / pos.sum(dim=1)


def reliability_ap_loss(
    ap: torch.Tensor, reliability: torch.Tensor, kappa: float = 0.5, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """R2D2 reliability-weighted AP loss ``mean(1 - AP * R - kappa * (1 - R))`` (spec §3.3).

    A query with low reliability ``R`` pays ``kappa`` instead of ``1 - AP``, so the network
    learns to flag pixels whose AP it cannot raise above ``kappa``.

    Args:
        ap: ``(M,)`` AP per query (e.g. from :func:`quantized_ap`).
        reliability: ``(M,)`` in ``[0, 1]``; R2D2 uses the mean of the reliability at the
            query (image 1) and at its positive (image 2).
        kappa: AP threshold, 0.5 in R2D2.
        mask: optional ``(M,)`` bool of queries to average over.

    Returns:
        Scalar loss (0 when ``mask`` selects nothing).
    """
    per_query = 1 - ap * reliability - kappa * (1 - reliability)
    if mask is not None:
        per_query = per_query[mask]
    return per_query.mean() if per_query.numel() else per_query.sum()


@dataclass(frozen=True)
class APLossConfig:
    """Options of :class:`HNDescAPLoss`; defaults are HNDesc's (spec §2.8.2).

    Attributes:
        num_bins: ``Q`` = 20 AP bins.
        num_negatives: ``K`` = 20 hardest negatives per query.
        final_relu: the descriptors are non-negative (HNDesc-r2d2's final ReLU), so
            similarities lie in [0, 1]; otherwise [-1, 1]. Decides the default range.
        sim_range: explicit bin range overriding ``final_relu``. HNDesc always used (0, 1),
            also for the signed CAPS descriptors, where every negative similarity falls in the
            lowest bin (spec §10.9): set ``(0.0, 1.0)`` for that fidelity.
        kappa: reliability threshold used when ``forward`` gets a reliability (R2D2: 0.5).
        plain_weight: with a reliability, also add ``plain_weight * mean(1 - AP)``. R2D2 uses 0;
            with 0, reliability can fall to 0 while AP < kappa and the descriptor stops learning
            (seen in HNDesc runs, benchmarks/RESULTS.md §5), so selfdesc's HNDesc sets 1.
    """

    num_bins: int = 20
    num_negatives: int = 20
    final_relu: bool = True
    sim_range: tuple[float, float] | None = None
    kappa: float = 0.5
    plain_weight: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.resolved_range
        if self.num_bins < 2 or self.num_negatives < 1 or not lo < hi or not 0 <= self.kappa <= 1:
            raise ConfigError(
                f"APLossConfig: need num_bins >= 2, num_negatives >= 1, lo < hi and 0 <= kappa <= 1, got {self}"
            )

    @property
    def resolved_range(self) -> tuple[float, float]:
        """The ``(lo, hi)`` similarity range of the AP bins."""
        if self.sim_range is not None:
            return (float(self.sim_range[0]), float(self.sim_range[1]))
        return (0.0, 1.0) if self.final_relu else (-1.0, 1.0)


class HNDescAPLoss(nn.Module):
    """AP with one positive and the ``K`` hardest negatives per query (HNDesc, spec §2.8.2).

    For query ``i``: ``s+ = <q_i, p_i>``, negatives = the ``K`` largest ``<q_i, n_ij>`` among
    the valid ones (padded by repeating the weakest when fewer), ``AP_i`` = quantised AP of
    ``[s+, negatives]``, loss ``= mean_i (1 - AP_i)``. With ``reliability`` the loss is
    R2D2's :func:`reliability_ap_loss` instead. Queries without any valid negative are left
    out of the mean.
    """

    def __init__(self, config: APLossConfig | None = None) -> None:
        super().__init__()
        self.config = config or APLossConfig()

    def forward(
        self,
        query: torch.Tensor,
        positive: torch.Tensor,
        negatives: torch.Tensor,
        neg_mask: torch.Tensor | None = None,
        reliability: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Loss of a batch of queries.

        Args:
            query: ``(M, D)`` L2-normalised anchor descriptors.
            positive: ``(M, D)`` descriptors of their true correspondences.
            negatives: ``(M, N, D)`` negative pool per query (e.g. from the miner), any ``N``.
            neg_mask: optional ``(M, N)`` bool, valid pool entries.
            reliability: optional ``(M,)`` reliability per query, switching to the R2D2 loss.

        Returns:
            ``loss`` (scalar), ``ap`` (mean AP of the used queries, detached),
            ``ap_per_query`` ``(M,)`` detached (NaN for unused queries), ``num_queries`` (long).
        """
        cfg = self.config
        sim_pos = (query * positive).sum(dim=-1)
        sim_neg = torch.einsum("md,mnd->mn", query, negatives)
        index, count = select_hardest(sim_neg.detach(), neg_mask, cfg.num_negatives)
        used = count > 0
        ap = quantized_ap(sim_pos[used], sim_neg[used].gather(1, index[used]), cfg.num_bins, cfg.resolved_range)
        if reliability is None:
            loss = (1 - ap).sum() / max(ap.numel(), 1)
        else:
            loss = reliability_ap_loss(ap, reliability[used], cfg.kappa)
            if cfg.plain_weight:
                loss = loss + cfg.plain_weight * (1 - ap).sum() / max(ap.numel(), 1)
        ap_per_query = torch.full_like(sim_pos, float("nan")).detach()
        ap_per_query[used] = ap.detach()
        mean_ap = ap.detach().mean() if ap.numel() else sim_pos.new_tensor(float("nan"))
        return {"loss": loss, "ap": mean_ap, "ap_per_query": ap_per_query, "num_queries": used.sum()}
