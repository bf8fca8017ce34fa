"""A Swin-Transformer backbone for dense local features (spec §6.2c; randomly initialised).

The architecture follows Swin (Liu et al. 2021; timm's ``SwinTransformer`` layout), written
here from the paper: 4x4 patch embedding (stride 4) + LayerNorm; stages of blocks
``x + W-MSA(LN(x))``, ``x + MLP(LN(x))`` with window attention, a learned relative position bias
per head and every second block shifted by half a window (with the attention mask of the
cyclic shift); 2x2 patch merging (concatenate, LayerNorm, linear ``4C -> 2C``) between stages.
Feature maps are zero-padded to a multiple of the window inside each block (as Swin's
detection backbone does).

Dense head (the spec's [INFER] default): only the first ``len(depths)`` stages are built
(Swin-T's stage widths 96, 192, ... and heads 3, 6, ... by default, two stages); each stage
output is LayerNorm-ed, projected by a 1x1 conv to ``dim``, upsampled to stride 4 and summed
(FPN-style), then a 3x3 conv gives the ``dim``-D descriptors at stride 4 (cell ``j`` centred on
pixel ``4 j + 1.5``). Detector: ASLFeat peakiness (:class:`~selfdesc.models.deform.PeakinessDetector`)
on the descriptor map (dilation 1) and on the first stage (dilation 2). Dense-backbone
interface of :mod:`selfdesc.models.vgg`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.errors import ConfigError
from selfdesc.models.deform import PeakinessDetector
from selfdesc.models.vgg import normalize_image, pad_to_multiple


def window_partition(x: torch.Tensor, w: int) -> torch.Tensor:
    """``(B, H, W, C)`` with ``H, W`` multiples of ``w`` -> ``(B * nW, w * w, C)``."""
    B, H, W, C = x.shape
    x = x.view(B, H // w, w, W // w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, w * w, C)


def window_reverse(windows: torch.Tensor, w: int, H: int, W: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, w * w, C)`` -> ``(B, H, W, C)``."""
    C = windows.shape[-1]
    x = windows.view(-1, H // w, W // w, w, w, C).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, H, W, C)


def shift_mask(H: int, W: int, w: int, shift: int, device: torch.device) -> torch.Tensor:
    """``(nW, w*w, w*w)`` additive mask (0 or -100) keeping attention inside the regions of a cyclic shift."""
    region = torch.zeros(H, W, device=device)
    cuts = (slice(0, -w), slice(-w, -shift), slice(-shift, None))
    label = 0
    for hs in cuts:
        for ws in cuts:
            region[hs, ws] = label
            label += 1
    ids = window_partition(region[None, :, :, None], w)[..., 0]  # (nW, w*w)
    diff = ids[:, :, None] - ids[:, None, :]
    return torch.where(diff != 0, -100.0, 0.0)


class WindowAttention(nn.Module):
    """Multi-head self-attention inside ``w x w`` windows with a relative position bias."""

    def __init__(self, dim: int, heads: int, w: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"swin backbone: width {dim} is not divisible by {heads} heads")
        self.heads, self.w = heads, w
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * w - 1) ** 2, heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(w), torch.arange(w), indexing="ij")).flatten(1)  # (2, w*w)
        rel = (coords[:, :, None] - coords[:, None, :]) + (w - 1)
        self.register_buffer("bias_index", rel[0] * (2 * w - 1) + rel[1], persistent=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        Bw, N, C = x.shape
        q, k, v = self.qkv(x).view(Bw, N, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (Bw, heads, N, N)
        attn = attn + self.bias_table[self.bias_index.view(-1)].view(N, N, -1).permute(2, 0, 1)[None].to(attn.dtype)
        if mask is not None:
            nW = mask.shape[0]
            attn = attn.view(Bw // nW, nW, self.heads, N, N) + mask[None, :, None].to(attn.dtype)
            attn = attn.view(Bw, self.heads, N, N)
        out = attn.softmax(-1) @ v
        return self.proj(out.transpose(1, 2).reshape(Bw, N, C))


class SwinBlock(nn.Module):
    """``x + W-MSA(LN(x))``, ``x + MLP(LN(x))`` on ``(B, H, W, C)`` maps; ``shift`` > 0 for SW-MSA."""

    def __init__(self, dim: int, heads: int, w: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.w, self.shift = w, shift
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, heads, w)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, H, W, C = x.shape
        w = self.w
        y = F.pad(self.norm1(x), (0, 0, 0, (-W) % w, 0, (-H) % w))
        Hp, Wp = y.shape[1:3]
        shift = self.shift if min(Hp, Wp) > w else 0
        mask = None
        if shift:
            y = torch.roll(y, (-shift, -shift), dims=(1, 2))
            mask = shift_mask(Hp, Wp, w, shift, x.device)
        y = window_reverse(self.attn(window_partition(y, w), mask), w, Hp, Wp)
        if shift:
            y = torch.roll(y, (shift, shift), dims=(1, 2))
        x = x + y[:, :H, :W]
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """2x2 neighbourhood -> concatenate (``4C``) -> LayerNorm -> linear ``2C``; halves ``H``, ``W``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduce = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (0, 0, 0, x.shape[2] % 2, 0, x.shape[1] % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduce(self.norm(x))


class SwinBackbone(nn.Module):
    """Swin stages + FPN-style fusion to stride 4 + peakiness detector (see the module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {
        "embed_dim": 96,
        "depths": [2, 2],
        "num_heads": [3, 6],
        "window": 7,
        "mlp_ratio": 4.0,
        "dim": 128,
        "detector_dilations": [2, 1],
        "detector_weights": [1.0, 2.0],
    }

    stride, offset = 4, 1.5
    score_stride, score_offset = 1, 0.0

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = c = merge(self.default_conf, conf or {}, owner="SwinBackbone")
        if len(c["depths"]) != len(c["num_heads"]) or not c["depths"]:
            raise ConfigError(f"swin backbone: depths {c['depths']} and num_heads {c['num_heads']} must have the same length")
        self.dim = int(c["dim"])
        self.divisor = 4 * 2 ** (len(c["depths"]) - 1)
        E, w = int(c["embed_dim"]), int(c["window"])
        self.patch_embed = nn.Conv2d(3, E, 4, stride=4)
        self.embed_norm = nn.LayerNorm(E)
        self.stages = nn.ModuleList()
        self.merges = nn.ModuleList()
        self.out_norms = nn.ModuleList()
        self.laterals = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(c["depths"], c["num_heads"])):
            width = E * 2**i
            self.merges.append(PatchMerging(width // 2) if i else nn.Identity())
            self.stages.append(nn.Sequential(*[SwinBlock(width, heads, w, (w // 2) * (j % 2), c["mlp_ratio"]) for j in range(depth)]))
            self.out_norms.append(nn.LayerNorm(width))
            self.laterals.append(nn.Conv2d(width, self.dim, 1))
        self.fuse = nn.Conv2d(self.dim, self.dim, 3, padding=1)
        self.detector = PeakinessDetector(c["detector_dilations"], c["detector_weights"])
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = normalize_image(pad_to_multiple(image, self.divisor))
        size = (int(x.shape[-2]), int(x.shape[-1]))
        t = self.embed_norm(self.patch_embed(x).permute(0, 2, 3, 1))  # (B, H/4, W/4, E)
        fused = None
        first = None
        for patch_merge, stage, norm, lateral in zip(self.merges, self.stages, self.out_norms, self.laterals):
            t = stage(patch_merge(t))
            y = norm(t).permute(0, 3, 1, 2)
            if first is None:
                first = y
            y = lateral(y)
            fused = y if fused is None else fused + F.interpolate(y, size=fused.shape[-2:], mode="bilinear", align_corners=False)
        assert fused is not None and first is not None
        features = self.fuse(fused)
        levels = [(first, self.stride, self.offset), (features, self.stride, self.offset)]
        return {"features": features, "scores": self.detector(levels, size)}


__all__ = ["PatchMerging", "SwinBackbone", "SwinBlock", "WindowAttention", "shift_mask", "window_partition", "window_reverse"]
