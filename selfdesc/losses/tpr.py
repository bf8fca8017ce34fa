"""TPR's transformation-prediction loss, soft labels, curriculum and collapse metrics (spec §6, §12).

At the corresponding locations ``c`` of a pair (TPR slides):

* prediction loss ``L_pred_c = 1 - <y_c, y'_c>`` between the online prediction
  ``y = q(g_o(z))`` and the target projection ``y' = g_t(z')`` (both L2-normalised);
* saliency weights ``w_c = s_c s'_c / sum_n s_n s'_n`` from the detection scores of both views;
* hard labels: ``L_hard = sum_c w_c L_pred_c``;
* soft labels ``l_c = exp(-alpha (1 - <t_c, t'_c>) / lambda)`` from the *target* features of
  the two views at corresponding locations (view 2's features mapped back to view 1 by the
  inverse transformation), no gradient; ``l_c = 1`` for identical features and decreases with
  their distance; ``alpha`` follows a curriculum. Soft loss: the soft label is the confidence of
  the positive, ``L_soft = sum_c w_c l_c L_pred_c / sum_c w_c l_c``. The printed slide formula is
  garbled; an earlier reading, ``sum_c w_c (<y_c, y'_c> - l_c)^2``, cancels itself (the label is
  computed from the same similarity the prediction already tracks, so the loss falls to ~0
  without any invariance being learned; docs/tpr.md, diagnosis).

Stabiliser (documented as such, no correspondence is used as a negative):
:func:`local_uniformity`, Wang & Isola's uniformity term over the cells of one view: nothing in a
positive-only loss makes neighbouring locations differ.

Deviation: the slides also divide by ``|C|``; with weights that already sum to 1 this is only a
constant scale, so it is left out (the loss is a weighted mean).
"""
from __future__ import annotations

import math

import torch

from selfdesc.errors import ConfigError

#: shapes of :func:`ramp`
RAMPS = ("linear", "cosine", "constant")


def prediction_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - <prediction, target>`` of ``(..., D)`` L2-normalised vectors -> ``(...)``."""
    return 1.0 - (prediction * target).sum(-1)


def soft_labels(y1: torch.Tensor, y2: torch.Tensor, alpha: float, lam: float) -> torch.Tensor:
    """``exp(-alpha (1 - <y1, y2>) / lam)`` of ``(..., D)`` L2-normalised features -> ``(...)`` in ``(0, 1]``."""
    if lam <= 0:
        raise ConfigError(f"soft labels: lambda must be > 0, got {lam}")
    return torch.exp(-alpha * (1.0 - (y1 * y2).sum(-1)) / lam)


def saliency_weights(s1: torch.Tensor, s2: torch.Tensor, mask: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """``w_c = s_c s'_c / sum_n s_n s'_n`` per row over the valid entries.

    Args:
        s1, s2: ``(B, N)`` detection scores (>= 0) of both views at the correspondences.
        mask: ``(B, N)`` bool, valid correspondences.

    Returns:
        ``(B, N)`` weights, 0 where not valid, each row with a valid entry summing to 1.
    """
    w = s1 * s2 * mask
    return w / w.sum(1, keepdim=True).clamp_min(eps)


def uniform_weights(mask: torch.Tensor) -> torch.Tensor:
    """``(B, N)`` weights ``1 / #valid`` on the valid entries of each row (no saliency weighting)."""
    w = mask.to(torch.float32)
    return w / w.sum(1, keepdim=True).clamp_min(1.0)


def weighted_loss(
    prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-pair TPR loss ``(B,)``: ``sum_c w_c L_pred_c`` (hard) or ``sum_c w_c l_c L_pred_c / sum_c w_c l_c`` (soft).

    Args:
        prediction, target: ``(B, N, D)`` L2-normalised.
        weights: ``(B, N)`` from :func:`saliency_weights` or :func:`uniform_weights` (rows sum to 1).
        labels: ``(B, N)`` soft labels in ``(0, 1]`` (None: hard labels, i.e. 1), used without gradient.
    """
    if labels is not None:
        weights = weights * labels.detach()
        weights = weights / weights.sum(1, keepdim=True).clamp_min(1e-12)
    return (weights * prediction_loss(prediction, target)).sum(1)


def local_uniformity(descriptors: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity of the descriptors of each view (Wang & Isola 2020), averaged over views.

    ``log mean_{i != j} exp(-t ||x_i - x_j||^2)`` over the ``N`` cells of a view (L2-normalised
    inside): lowest when the cells of one image spread over the sphere, 0 when they coincide.

    Args:
        descriptors: ``(B, N, D)``, ``N >= 2`` cells per view.
        t: temperature of the Gaussian potential.

    Returns:
        scalar.
    """
    x = torch.nn.functional.normalize(descriptors.float(), dim=-1)
    b, n, _ = x.shape
    sq = (2.0 - 2.0 * x @ x.transpose(1, 2)).clamp_min(0.0)  # (B, N, N) squared distances
    off = ~torch.eye(n, dtype=torch.bool, device=x.device)
    logits = (-t * sq)[:, off].reshape(b, n * (n - 1))
    return (torch.logsumexp(logits, dim=1) - math.log(n * (n - 1))).mean()


def ramp(progress: float, start: float, end: float, shape: str = "linear") -> float:
    """Curriculum value at training ``progress`` in ``[0, 1]`` (clamped): ``start`` -> ``end``.

    ``linear``; ``cosine`` (slow start and end); ``constant`` (``end`` throughout: no curriculum).
    Monotone in ``progress`` for every shape.
    """
    if shape not in RAMPS:
        raise ConfigError(f"curriculum: unknown shape '{shape}' (known: {', '.join(RAMPS)})")
    e = min(max(float(progress), 0.0), 1.0)
    if shape == "constant":
        return end
    if shape == "cosine":
        e = (1.0 - math.cos(math.pi * e)) / 2.0
    return start + (end - start) * e


def covariance_penalty(descriptors: torch.Tensor) -> torch.Tensor:
    """Decorrelation guard against dimensional collapse (VICReg's covariance term; no negatives).

    ``descriptors``: ``(N, D)``, L2-normalised inside and scaled by ``sqrt(D)`` so that evenly
    spread descriptors have unit variance per dimension. Returns the sum of squared off-diagonal
    entries of their ``D x D`` covariance divided by ``D``: about 0 for decorrelated dimensions,
    up to ``D - 1`` when every dimension carries the same signal (rank 1).
    """
    n, d = descriptors.shape
    if n < 2:
        return descriptors.sum() * 0.0
    z = torch.nn.functional.normalize(descriptors.float(), dim=-1) * math.sqrt(d)
    z = z - z.mean(0, keepdim=True)
    cov = z.T @ z / (n - 1)
    off = cov - torch.diag_embed(torch.diagonal(cov))
    return (off**2).sum() / d


@torch.no_grad()
def collapse_metrics(descriptors: torch.Tensor) -> dict[str, torch.Tensor]:
    """Collapse indicators of a set of descriptors ``(N, D)`` (L2-normalised inside).

    Returns:
        ``desc_std``: mean per-dimension standard deviation times ``sqrt(D)`` (about 1 for
        descriptors spread evenly over the sphere, 0 when they all coincide);
        ``eff_rank``: effective rank ``exp(H(p))`` of the centred matrix, ``p`` its normalised
        singular values (Roy & Vetterli 2007), in ``[1, min(N, D)]`` (1 when collapsed to a line).
    """
    x = torch.nn.functional.normalize(descriptors.detach().float(), dim=-1)
    D = x.shape[-1]
    std = x.std(0, unbiased=False).mean() * math.sqrt(D)
    sv = torch.linalg.svdvals(x - x.mean(0, keepdim=True))
    p = sv / sv.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return {"desc_std": std, "eff_rank": torch.exp(entropy)}


__all__ = ["RAMPS", "collapse_metrics", "covariance_penalty", "local_uniformity", "prediction_loss", "ramp", "saliency_weights", "soft_labels", "uniform_weights", "weighted_loss"]
