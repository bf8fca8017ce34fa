"""Top-K hardest-negative selection shared by the losses and the miner."""
from __future__ import annotations

import torch


@torch.no_grad()
def select_hardest(scores: torch.Tensor, valid: torch.Tensor | None, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the ``k`` highest scores per row among the valid entries.

    When a row has fewer than ``k`` valid entries, the list is padded by repeating the
    weakest selected one (HNDesc, spec §2.8.2), so every row gets exactly ``k`` indices.

    Args:
        scores: ``(M, N)`` hardness of each candidate (similarity, or minus a distance).
        valid: ``(M, N)`` bool, candidates allowed per row; ``None`` = all.
        k: number of indices per row (``>= 1``).

    Returns:
        ``index`` ``(M, k)`` long into the columns of ``scores`` (sorted hardest first;
        meaningless where the row has no valid entry) and ``count`` ``(M,)`` long: the number
        of distinct valid entries selected (``min(k, valid per row)``; 0 = nothing to select).
    """
    M, N = scores.shape
    if valid is None:
        valid = torch.ones_like(scores, dtype=torch.bool)
    if N == 0:
        zeros = torch.zeros(M, dtype=torch.long, device=scores.device)
        return torch.zeros(M, k, dtype=torch.long, device=scores.device), zeros
    k_eff = min(k, N)
    masked = scores.masked_fill(~valid, float("-inf"))
    index = masked.topk(k_eff, dim=1).indices
    count = valid.sum(dim=1).clamp(max=k_eff)
    last = (count - 1).clamp(min=0)
    take = torch.minimum(torch.arange(k, device=scores.device)[None], last[:, None])
    return index.gather(1, take), count
