"""Deformable convolution in plain torch, ASLFeat's backbone and its peakiness detector (spec §6.2b).

:func:`deform_conv2d` is a stride-1 deformable convolution (Dai et al. 2017, no modulation:
ASLFeat's unconstrained type ``'u'``) written with ``grid_sample``: every kernel tap ``k`` of
output pixel ``p`` reads the input bilinearly at ``p + p_k + offset_k(p)`` (zero outside the
image, like zero padding), then one matrix product applies the weights. It runs on any device
(no compiled op needed). ``DeformConv2d`` predicts the offsets with a 3x3 convolution whose
weights start at zero, so it starts as a plain convolution.

``ASLFeatBackbone`` (spec §6.2b table; dense-backbone interface of :mod:`selfdesc.models.vgg`):
conv0..conv5 plain 3x3 conv + BN + ReLU (stride 2 at conv2 and conv4), conv6_0 / conv6_1
deformable + BN + ReLU, conv6 deformable without BN / ReLU = 128-D descriptors at stride 4.
The stride-2 convolutions are 3x3 with padding 1, so cell ``j`` of the stride-4 map is centred
on image pixel ``4 j`` (``offset = 0``). Input: RGB, ImageNet-normalised (ASLFeat itself reads
grayscale).

``PeakinessDetector``: ASLFeat's multi-level score. Per level ``y`` (divided by a running
instance maximum, decay 0.99), ``alpha = softplus(y - avg_3x3,dil(y))`` (reflect padding),
``beta = softplus(y - mean_c(y))``, ``score = max_c(alpha * beta)``; the level scores are
resampled to image pixels and summed with weights (conv1, conv3, conv6 with dilations 3, 2, 1
and weights 1/6, 2/6, 3/6 in ASLFeat).

:func:`sample_map` reads any such map at image points given its ``stride`` / ``offset``.
"""
from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.models.sampling import sample_descriptors
from selfdesc.models.vgg import normalize_image, pad_to_multiple


def sample_map(maps: torch.Tensor, points: torch.Tensor, stride: int, offset: float, normalize: bool = False) -> torch.Tensor:
    """Bilinear read of a dense map whose cell ``j`` is centred on image pixel ``stride * j + offset``.

    Args:
        maps: ``(B, C, h, w)``.
        points: ``(B, N, 2)`` image points ``(x, y)``, pixel-centre convention.
        stride, offset: the map's geometry (see the module docstring of :mod:`selfdesc.models.vgg`).
        normalize: L2-normalise the result.

    Returns:
        ``(B, N, C)`` (border values outside the map).
    """
    shift = offset - (stride - 1) / 2  # sample_descriptors assumes offset (stride - 1) / 2
    dtype = torch.promote_types(maps.dtype, torch.float32)  # bf16 / fp16 sampling grids would be off by up to a pixel
    return sample_descriptors(maps.to(dtype), points.to(dtype) - shift, normalize=normalize, stride=stride)


def resample_to_image(maps: torch.Tensor, size: tuple[int, int], stride: int, offset: float) -> torch.Tensor:
    """Resample a ``(B, C, h, w)`` map (``stride`` / ``offset``) at every pixel of an ``(H, W)`` image."""
    H, W = size
    if stride == 1 and offset == 0 and tuple(maps.shape[-2:]) == (H, W):
        return maps
    ys, xs = torch.meshgrid(torch.arange(H, device=maps.device), torch.arange(W, device=maps.device), indexing="ij")
    points = torch.stack([xs, ys], -1).reshape(1, -1, 2).to(maps.dtype).expand(len(maps), -1, -1)
    return sample_map(maps, points, stride, offset).transpose(1, 2).reshape(len(maps), -1, H, W)


def deform_conv2d(
    x: torch.Tensor,
    offsets: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    dilation: int = 1,
) -> torch.Tensor:
    """Stride-1 deformable convolution with 'same' padding.

    Args:
        x: ``(B, C, H, W)`` input.
        offsets: ``(B, 2 * k * k, H, W)``, ``(dy, dx)`` pixel offsets per tap, taps in row-major
            order (as ``torchvision.ops.deform_conv2d``).
        weight: ``(O, C, k, k)``, ``k`` odd.
        bias: ``(O,)`` or None.
        dilation: tap spacing; the padding is ``dilation * (k - 1) / 2``.

    Returns:
        ``(B, O, H, W)``; equals ``F.conv2d(x, weight, bias, padding=..., dilation=...)`` for zero offsets.
    """
    B, C, H, W = x.shape
    O, _, k, _ = weight.shape
    K = k * k
    half = (k - 1) // 2
    dtype = torch.promote_types(x.dtype, torch.float32)  # positions in bf16 / fp16 would be off by up to 1/4 px
    taps = (torch.arange(k, device=x.device, dtype=dtype) - half) * dilation
    ty, tx = torch.meshgrid(taps, taps, indexing="ij")
    off = offsets.view(B, K, 2, H, W).to(dtype)
    py = torch.arange(H, device=x.device, dtype=dtype).view(1, 1, H, 1) + ty.reshape(1, K, 1, 1) + off[:, :, 0]
    px = torch.arange(W, device=x.device, dtype=dtype).view(1, 1, 1, W) + tx.reshape(1, K, 1, 1) + off[:, :, 1]
    grid = torch.stack([px * (2.0 / max(W - 1, 1)) - 1.0, py * (2.0 / max(H - 1, 1)) - 1.0], dim=-1)
    cols = F.grid_sample(x.to(dtype), grid.view(B, K * H, W, 2), mode="bilinear", padding_mode="zeros", align_corners=True)
    out = torch.matmul(weight.reshape(O, C * K).to(cols.dtype), cols.view(B, C * K, H * W))
    if bias is not None:
        out = out + bias.view(1, O, 1)
    return out.view(B, O, H, W)


class DeformConv2d(nn.Module):
    """``k x k`` deformable convolution, stride 1, offsets from a zero-initialised 3x3 conv."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, dilation: int = 1, bias: bool = True) -> None:
        super().__init__()
        self.dilation = dilation
        self.weight = nn.Parameter(torch.empty(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.offset = nn.Conv2d(cin, 2 * kernel * kernel, 3, padding=1)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return deform_conv2d(x, self.offset(x), self.weight, self.bias, self.dilation)


class PeakinessDetector(nn.Module):
    """ASLFeat's multi-level peakiness score (see the module docstring).

    Args:
        dilations: per level, the dilation of the 3x3 local average.
        weights: per level, the weight of its score (normalised to sum 1).
        decay: decay of the running instance maximum each level is divided by.
    """

    def __init__(self, dilations: list[int], weights: list[float], decay: float = 0.99) -> None:
        super().__init__()
        if len(dilations) != len(weights) or not dilations:
            from selfdesc.errors import ConfigError

            raise ConfigError(f"peakiness detector: need as many level weights as dilations, got {weights} and {dilations}")
        self.dilations = [int(d) for d in dilations]
        total = float(sum(weights))
        self.weights = [float(w) / total for w in weights]
        self.decay = decay
        self.register_buffer("moving_max", torch.ones(len(dilations)))
        self.register_buffer("initialized", torch.zeros(len(dilations), dtype=torch.bool))

    @staticmethod
    def level_score(y: torch.Tensor, dilation: int) -> torch.Tensor:
        """``max_c(softplus(y - avg_3x3,dil(y)) * softplus(y - mean_c(y)))`` of ``(B, C, h, w)`` -> ``(B, 1, h, w)``."""
        C = y.shape[1]
        pad = F.pad(y, (dilation,) * 4, mode="reflect") if min(y.shape[-2:]) > dilation else F.pad(y, (dilation,) * 4, mode="replicate")
        box = y.new_full((C, 1, 3, 3), 1.0 / 9.0)
        local = F.conv2d(pad, box, dilation=dilation, groups=C)
        alpha = F.softplus(y - local)
        beta = F.softplus(y - y.mean(1, keepdim=True))
        return (alpha * beta).amax(1, keepdim=True)

    def forward(self, levels: list[tuple[torch.Tensor, int, float]], size: tuple[int, int]) -> torch.Tensor:
        """Score map at image pixels.

        Args:
            levels: per level ``(feature map (B, C, h, w), stride, offset)``.
            size: ``(H, W)`` of the output.

        Returns:
            ``(B, 1, H, W)`` scores.
        """
        score = None
        for i, (y, stride, offset) in enumerate(levels):
            if self.training:
                with torch.no_grad():
                    instance_max = y.detach().float().flatten(1).amax(1).mean()
                    if not bool(self.initialized[i]):
                        self.moving_max[i] = instance_max
                        self.initialized[i] = True
                    else:
                        self.moving_max[i] = self.decay * self.moving_max[i] + (1 - self.decay) * instance_max
            s = self.level_score(y / self.moving_max[i].clamp_min(1e-6).to(y.dtype), self.dilations[i])
            s = resample_to_image(s, size, stride, offset) * self.weights[i]
            score = s if score is None else score + s
        assert score is not None
        return score


def _conv_bn(cin: int, cout: int, stride: int = 1, bias: bool = True, deformable: bool = False) -> nn.Sequential:
    conv: nn.Module = DeformConv2d(cin, cout, bias=bias) if deformable else nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=bias)
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class ASLFeatBackbone(nn.Module):
    """ASLFeat's network with the peakiness detector (see the module docstring).

    Options (``default_conf``): ``dim`` descriptor size; ``deformable`` (False: plain convs in
    conv6_*, an ablation); ``levels`` which of conv0..conv6 feed the detector (1, 3, 6), with
    their ``dilations`` and ``level_weights``; ``moving_max_decay``.
    """

    default_conf: ClassVar[dict[str, Any]] = {
        "dim": 128,
        "deformable": True,
        "levels": [1, 3, 6],
        "dilations": [3, 2, 1],
        "level_weights": [1.0, 2.0, 3.0],
        "moving_max_decay": 0.99,
    }

    divisor = 4
    stride, offset = 4, 0.0
    score_stride, score_offset = 1, 0.0

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        from selfdesc.errors import ConfigError

        self.conf = c = merge(self.default_conf, conf or {}, owner="ASLFeatBackbone")
        self.dim = int(c["dim"])
        dfm = bool(c["deformable"])
        self.layers = nn.ModuleList(
            [
                _conv_bn(3, 32),
                _conv_bn(32, 32, bias=False),
                _conv_bn(32, 64, stride=2),
                _conv_bn(64, 64, bias=False),
                _conv_bn(64, 128, stride=2),
                _conv_bn(128, 128),
                nn.Sequential(_conv_bn(128, 128, deformable=dfm), _conv_bn(128, 128, deformable=dfm)),
                DeformConv2d(128, self.dim, bias=False) if dfm else nn.Conv2d(128, self.dim, 3, padding=1, bias=False),
            ]
        )
        # conv0..conv5 -> layers 0..5; conv6 (descriptors) -> layer 7
        self._strides = [1, 1, 2, 2, 4, 4, 4]
        if any(lv not in range(7) for lv in c["levels"]):
            raise ConfigError(f"aslfeat backbone: levels must be in 0..6 (conv0..conv6), got {c['levels']}")
        self.detector = PeakinessDetector(c["dilations"], c["level_weights"], c["moving_max_decay"])

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = normalize_image(pad_to_multiple(image, self.divisor))
        size = x.shape[-2:]
        outs = []
        for layer in self.layers:
            x = layer(x)
            outs.append(x)
        outs = outs[:6] + [outs[7]]  # conv6_0/conv6_1 are one block; conv6 = descriptors
        levels = [(outs[lv], self._strides[lv], 0.0) for lv in self.conf["levels"]]
        return {"features": outs[6], "scores": self.detector(levels, (int(size[0]), int(size[1])))}


__all__ = ["ASLFeatBackbone", "DeformConv2d", "PeakinessDetector", "deform_conv2d", "resample_to_image", "sample_map"]
