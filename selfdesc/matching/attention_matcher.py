"""An attention matcher over two keypoint sets (in the spirit of SuperGlue / LightGlue; our code).

Pipeline (see docs/matcher.md):

1. descriptors ``(B, N, D)`` -> linear projection to ``width``;
2. keypoints ``(x, y)`` (pixel centres) normalised by their image size to about ``[-1, 1]``
   (``(p - (W, H) / 2) / (max(W, H) / 2)``) and encoded as rotary phases (learned linear
   frequencies), applied to queries and keys of the self-attention layers, so that attention
   depends on relative positions within an image;
3. ``num_layers`` blocks of self-attention (each image) then cross-attention (between the
   images, the same weights both ways) with :func:`torch.nn.functional.scaled_dot_product_attention`;
4. a partial-assignment head: similarity of projected features (plus, by default, a learned
   multiple of the input descriptors' cosine similarity, so that training starts from
   descriptor matching), dual softmax (row and column log-softmax) plus a matchability logit per point, giving the log-probabilities ``(B, N+1, M+1)``
   of ``i <-> j`` (inner block), ``i`` unmatched (last column) and ``j`` unmatched (last row);
5. matches: mutual argmax of the inner block with probability above ``filter_threshold``.

Optional early exit (``exit_confidence``): after every layer from ``min_layers`` on, the head is
applied and the layers stop once a fraction ``exit_fraction`` of the valid points have a
confident decision (largest probability of their row or column, dustbin included, above
``exit_confidence``). It is meaningful when the model was trained with ``deep_supervision``.

Padded batches carry ``mask0`` / ``mask1`` (True = real point). Inputs are batched dicts (see
:meth:`AttentionMatcher.forward`); :func:`match_pair` matches one pair of ``extract()`` outputs.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.errors import ConfigError


def normalize_keypoints(keypoints: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """``(B, N, 2)`` pixel ``(x, y)`` and ``(B, 2)`` image sizes ``(W, H)`` -> centred coordinates
    scaled by half the longer side (about ``[-1, 1]``)."""
    size = image_size.to(keypoints)
    return (keypoints - size[:, None] / 2) / (size.max(-1).values[:, None, None] / 2)


class RotaryEncoding(nn.Module):
    """Learned-frequency rotary phases of 2D positions: ``(B, N, 2)`` -> cos, sin ``(B, 1, N, head_dim)``."""

    def __init__(self, head_dim: int, gamma: float = 1.0) -> None:
        super().__init__()
        self.freqs = nn.Linear(2, head_dim // 2, bias=False)
        nn.init.normal_(self.freqs.weight, std=gamma)

    def forward(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        phase = self.freqs(positions).repeat_interleave(2, dim=-1)[:, None]
        return phase.cos(), phase.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive pairs of channels of ``x`` ``(B, h, N, d)`` by the encoded phases."""
    pairs = x.unflatten(-1, (-1, 2))
    swapped = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos.to(x.dtype) + swapped * sin.to(x.dtype)


def _key_mask(mask: torch.Tensor | None) -> torch.Tensor | None:
    """Bool ``(B, 1, 1, M)`` attention mask from ``(B, M)`` validity; None when nothing is padded.
    A set without any valid key attends to all (its outputs are unused) so that no NaN appears."""
    if mask is None or bool(mask.all()):
        return None
    mask = mask | ~mask.any(-1, keepdim=True)
    return mask[:, None, None, :]


class _FeedForward(nn.Module):
    """Update ``x`` from ``[x, message]``: ``x + MLP([x, message])``."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2 * width, 2 * width), nn.LayerNorm(2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, x: torch.Tensor, message: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(torch.cat([x, message], dim=-1))


class SelfBlock(nn.Module):
    """Multi-head self-attention with rotary positions, then the feed-forward update."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.ffn = _FeedForward(width)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).permute(2, 0, 3, 1, 4)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
        message = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.ffn(x, self.out(message.transpose(1, 2).flatten(-2)))


class CrossBlock(nn.Module):
    """Multi-head cross-attention, image 0 -> 1 and 1 -> 0 with the same weights."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.out = nn.Linear(width, width)
        self.ffn = _FeedForward(width)

    def _message(self, x: torch.Tensor, other: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q = self.q(x).unflatten(-1, (self.heads, -1)).transpose(1, 2)
        k, v = self.kv(other).unflatten(-1, (2, self.heads, -1)).permute(2, 0, 3, 1, 4)
        return self.out(F.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).flatten(-2))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, mask0: torch.Tensor | None, mask1: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        m0, m1 = self._message(x0, x1, mask1), self._message(x1, x0, mask0)
        return self.ffn(x0, m0), self.ffn(x1, m1)


class AssignmentHead(nn.Module):
    """Dual-softmax partial assignment with matchability: features -> log-probabilities ``(B, N+1, M+1)``.

    With ``descriptor_prior`` the similarity also gets ``prior * <d0_i, d1_j>`` of the L2-normalised
    input descriptors, ``prior`` a learned scale starting at ``descriptor_prior``: an untrained
    matcher then starts from the dual softmax of descriptor similarity (close to MNN matching).
    """

    def __init__(self, width: int, descriptor_prior: float | None = None) -> None:
        super().__init__()
        self.proj = nn.Linear(width, width)
        self.matchability = nn.Linear(width, 1)
        self.prior = nn.Parameter(torch.tensor(float(descriptor_prior))) if descriptor_prior else None

    def forward(
        self, x0: torch.Tensor, x1: torch.Tensor, mask0: torch.Tensor, mask1: torch.Tensor, desc_sim: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``x0`` ``(B, N, w)``, ``x1`` ``(B, M, w)``; ``desc_sim`` ``(B, N, M)`` input-descriptor cosine (for the prior)."""
        x0, x1 = x0.float(), x1.float()
        with torch.autocast(x0.device.type, enabled=False):
            scale = x0.shape[-1] ** -0.25
            sim = (self.proj(x0) * scale) @ (self.proj(x1) * scale).transpose(1, 2)
            if self.prior is not None and desc_sim is not None:
                sim = sim + self.prior * desc_sim
            z0, z1 = self.matchability(x0)[..., 0], self.matchability(x1)[..., 0]
        valid = mask0[:, :, None] & mask1[:, None, :]
        sim = sim.masked_fill(~valid, -1e4)
        inner = sim.log_softmax(2) + sim.log_softmax(1) + F.logsigmoid(z0)[:, :, None] + F.logsigmoid(z1)[:, None, :]
        B, N, M = sim.shape
        scores = sim.new_zeros(B, N + 1, M + 1)
        scores[:, :N, :M] = inner
        scores[:, :N, M] = F.logsigmoid(-z0)
        scores[:, N, :M] = F.logsigmoid(-z1)
        return scores


def mutual_matches(scores: torch.Tensor, threshold: float, mask0: torch.Tensor, mask1: torch.Tensor) -> dict[str, torch.Tensor]:
    """Mutual best entries of the inner block of log-probabilities ``(B, N+1, M+1)``.

    Returns ``matches0`` ``(B, N)`` / ``matches1`` ``(B, M)`` long (index into the other set, -1
    unmatched) and ``matching_scores0`` / ``matching_scores1`` (match probability, 0 unmatched).
    """
    inner = scores[:, :-1, :-1]
    B, N, M = inner.shape
    if N == 0 or M == 0:
        return {
            "matches0": torch.full((B, N), -1, dtype=torch.long, device=scores.device),
            "matches1": torch.full((B, M), -1, dtype=torch.long, device=scores.device),
            "matching_scores0": scores.new_zeros(B, N),
            "matching_scores1": scores.new_zeros(B, M),
        }
    best0, idx0 = inner.max(2)
    best1, idx1 = inner.max(1)
    mutual0 = idx1.gather(1, idx0) == torch.arange(N, device=scores.device)[None]
    mutual1 = idx0.gather(1, idx1) == torch.arange(M, device=scores.device)[None]
    ok0 = mutual0 & (best0.exp() > threshold) & mask0 & mask1.gather(1, idx0)
    ok1 = mutual1 & ok0.gather(1, idx1)
    return {
        "matches0": torch.where(ok0, idx0, -1),
        "matches1": torch.where(ok1, idx1, -1),
        "matching_scores0": torch.where(ok0, best0.exp(), 0.0),
        "matching_scores1": torch.where(ok1, best1.exp(), 0.0),
    }


class AttentionMatcher(nn.Module):
    """Attention matcher (see the module docstring); ``conf`` merges over :attr:`default_conf`."""

    default_conf: ClassVar[dict[str, Any]] = {
        "descriptor_dim": 128,  # D of the input descriptors
        "width": 256,  # feature width inside the matcher
        "num_heads": 4,
        "num_layers": 6,  # self + cross blocks
        "rotary_gamma": 1.0,  # std of the initial rotary frequencies (per normalised unit)
        "descriptor_prior": 30.0,  # initial scale of the input-descriptor similarity in the head (None: off)
        "filter_threshold": 0.1,  # smallest match probability kept
        "exit_confidence": None,  # e.g. 0.95 turns on early exit (see the module docstring)
        "exit_fraction": 0.95,
        "min_layers": 2,  # early exit never before this many layers
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, owner="matcher")
        c = self.conf
        if c["width"] % c["num_heads"] or (c["width"] // c["num_heads"]) % 2:
            raise ConfigError(f"matcher: width {c['width']} must be a multiple of 2 * num_heads ({c['num_heads']})")
        if c["num_layers"] < 1:
            raise ConfigError(f"matcher: num_layers must be >= 1, got {c['num_layers']}")
        self.input_proj = nn.Linear(c["descriptor_dim"], c["width"])
        self.rotary = RotaryEncoding(c["width"] // c["num_heads"], c["rotary_gamma"])
        self.self_blocks = nn.ModuleList(SelfBlock(c["width"], c["num_heads"]) for _ in range(c["num_layers"]))
        self.cross_blocks = nn.ModuleList(CrossBlock(c["width"], c["num_heads"]) for _ in range(c["num_layers"]))
        self.head = AssignmentHead(c["width"], c["descriptor_prior"])

    def _check(self, data: dict[str, torch.Tensor]) -> None:
        d0, d1 = data["descriptors0"], data["descriptors1"]
        D = self.conf["descriptor_dim"]
        if d0.shape[-1] != D or d1.shape[-1] != D:
            raise ConfigError(f"matcher expects {D}-dimensional descriptors, got {d0.shape[-1]} and {d1.shape[-1]}")

    def _confident(self, scores: torch.Tensor, mask0: torch.Tensor, mask1: torch.Tensor) -> bool:
        """Whether enough valid points have a confident decision (early exit)."""
        c = self.conf
        p = scores.exp()
        sure0 = (p[:, :-1].max(2).values > c["exit_confidence"]) & mask0
        sure1 = (p[:, :, :-1].max(1).values > c["exit_confidence"]) & mask1
        total = mask0.sum() + mask1.sum()
        return bool((sure0.sum() + sure1.sum()) >= c["exit_fraction"] * total)

    def forward(self, data: dict[str, torch.Tensor], all_layers: bool = False) -> dict[str, Any]:
        """Match padded batches of two keypoint sets.

        Args:
            data: ``keypoints0`` ``(B, N, 2)`` / ``keypoints1`` ``(B, M, 2)`` pixel ``(x, y)``
                (pixel-centre convention); ``descriptors0`` ``(B, N, D)`` / ``descriptors1``
                ``(B, M, D)``; ``image_size0`` / ``image_size1`` ``(B, 2)`` ``(W, H)``; optional
                ``mask0`` ``(B, N)`` / ``mask1`` ``(B, M)`` bool (True = real point).
            all_layers: also return ``layer_scores``, the head's output after every layer
                (deep supervision); disables early exit.

        Returns:
            ``scores`` ``(B, N+1, M+1)`` log-probabilities (last row / column: unmatched),
            ``matches0``, ``matches1``, ``matching_scores0``, ``matching_scores1`` (see
            :func:`mutual_matches`), ``num_layers`` (layers run) and, with ``all_layers``,
            ``layer_scores`` (list of ``(B, N+1, M+1)``).
        """
        self._check(data)
        kp0, kp1 = data["keypoints0"], data["keypoints1"]
        B, N, M = kp0.shape[0], kp0.shape[1], kp1.shape[1]
        mask0 = data.get("mask0")
        mask1 = data.get("mask1")
        mask0 = torch.ones(B, N, dtype=torch.bool, device=kp0.device) if mask0 is None else mask0.bool()
        mask1 = torch.ones(B, M, dtype=torch.bool, device=kp1.device) if mask1 is None else mask1.bool()
        x0 = self.input_proj(data["descriptors0"])
        x1 = self.input_proj(data["descriptors1"])
        if N == 0 or M == 0:  # nothing to attend to: every point is unmatched
            scores = x0.new_full((B, N + 1, M + 1), -math.inf).float()
            scores[:, :N, M] = 0.0
            scores[:, N, :M] = 0.0
            return {"scores": scores, **mutual_matches(scores, 1.0, mask0, mask1), "num_layers": 0, "layer_scores": [scores] if all_layers else []}
        cos0, sin0 = self.rotary(normalize_keypoints(kp0, data["image_size0"]))
        cos1, sin1 = self.rotary(normalize_keypoints(kp1, data["image_size1"]))
        desc_sim = None
        if self.head.prior is not None:
            with torch.autocast(kp0.device.type, enabled=False):
                d0 = F.normalize(data["descriptors0"].float(), dim=-1)
                d1 = F.normalize(data["descriptors1"].float(), dim=-1)
                desc_sim = d0 @ d1.transpose(1, 2)
        am0 = _key_mask(mask0) if "mask0" in data else None  # no mask given: nothing padded, no check
        am1 = _key_mask(mask1) if "mask1" in data else None
        early = self.conf["exit_confidence"] is not None and not all_layers
        layer_scores: list[torch.Tensor] = []
        scores = None
        layers = 0
        for self_block, cross_block in zip(self.self_blocks, self.cross_blocks):
            x0 = self_block(x0, cos0, sin0, am0)
            x1 = self_block(x1, cos1, sin1, am1)
            x0, x1 = cross_block(x0, x1, am0, am1)
            layers += 1
            if all_layers and layers < self.conf["num_layers"]:
                layer_scores.append(self.head(x0, x1, mask0, mask1, desc_sim))
            if early and self.conf["min_layers"] <= layers < self.conf["num_layers"]:
                scores = self.head(x0, x1, mask0, mask1, desc_sim)
                if self._confident(scores, mask0, mask1):
                    break
                scores = None
        if scores is None:
            scores = self.head(x0, x1, mask0, mask1, desc_sim)
        if all_layers:
            layer_scores.append(scores)
        return {"scores": scores, **mutual_matches(scores, self.conf["filter_threshold"], mask0, mask1), "num_layers": layers, "layer_scores": layer_scores}
