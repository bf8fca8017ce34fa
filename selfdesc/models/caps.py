"""CAPS ResUNet (the HNDesc ``caps`` backbone), written from the spec (methods.md §2.2.1, §4).

ResNet-50 encoder truncated after ``layer3`` (stride 16) and a U-Net decoder back to
stride 4. HNDesc uses only the *fine* 128-D map; CAPS concatenates coarse and fine. ImageNet
weights are not available here, so the encoder starts from scratch; torchvision-format
ResNet-50 weights (``conv1.weight``, ``layer1.0.conv1.weight``, ...) can be loaded by path
with :meth:`ResUNet.load_encoder_weights`.

Input: ``(B, 3, H, W)`` RGB in [0, 1] (ImageNet mean/std applied inside).
Output dict: ``fine`` ``(B, 128, ceil(H/4), ceil(W/4))`` (not normalised; HNDesc
L2-normalises after sampling), ``coarse`` ``(B, 128, ceil(H/16), ceil(W/16))``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.weights import load_state_checked, read_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), torchvision parameter names."""

    expansion = 4

    def __init__(self, in_ch: int, width: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = width * self.expansion
        self.conv1 = nn.Conv2d(in_ch, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_ch, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_ch)
        self.downsample = (
            nn.Sequential(nn.Conv2d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm2d(out_ch))
            if stride != 1 or in_ch != out_ch
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _layer(in_ch: int, width: int, blocks: int, stride: int) -> nn.Sequential:
    layers = [Bottleneck(in_ch, width, stride)] + [Bottleneck(width * 4, width) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ConvBNELU(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, k: int) -> None:
        super().__init__(nn.Conv2d(in_ch, out_ch, k, padding=(k - 1) // 2), nn.BatchNorm2d(out_ch), nn.ELU(inplace=True))


class UpConv(nn.Module):
    """Bilinear x2 upsampling (align_corners=True) then conv + BN + ELU."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = ConvBNELU(in_ch, out_ch, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True))


def _pad_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Zero-pad ``x`` (right/bottom) to ``ref``'s spatial size (skip connections of odd sizes)."""
    dh, dw = ref.shape[-2] - x.shape[-2], ref.shape[-1] - x.shape[-1]
    return F.pad(x, (0, max(dw, 0), 0, max(dh, 0)))[..., : ref.shape[-2], : ref.shape[-1]]


class ResUNet(nn.Module):
    """CAPS ResUNet; ``default_conf``: ``coarse_dim`` 128, ``fine_dim`` 128."""

    default_conf: ClassVar[dict[str, Any]] = {"coarse_dim": 128, "fine_dim": 128}
    #: input pixels per cell of the fine descriptor map
    stride: ClassVar[int] = 4

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, owner="ResUNet")
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = _layer(64, 64, 3, 1)
        self.layer2 = _layer(256, 128, 4, 2)
        self.layer3 = _layer(512, 256, 6, 2)
        self.conv_coarse = ConvBNELU(1024, self.conf["coarse_dim"], 1)
        self.upconv3 = UpConv(1024, 512)
        self.iconv3 = ConvBNELU(1024, 512, 3)
        self.upconv2 = UpConv(512, 256)
        self.iconv2 = ConvBNELU(512, 256, 3)
        self.conv_fine = ConvBNELU(256, self.conf["fine_dim"], 1)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, data: dict[str, torch.Tensor], coarse: bool = False) -> dict[str, torch.Tensor]:
        x = (data["image"] - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, stride=2, padding=1)
        x1 = self.layer1(x)
        x2 = self.layer2(x1)
        x3 = self.layer3(x2)
        y = self.upconv3(x3)
        y = self.iconv3(torch.cat([_pad_to(y, x2), x2], dim=1))
        y = self.upconv2(y)
        y = self.iconv2(torch.cat([_pad_to(y, x1), x1], dim=1))
        out = {"fine": self.conv_fine(y)}
        if coarse:  # HNDesc discards it; computing it only on request keeps it out of the graph
            out["coarse"] = self.conv_coarse(x3)
        return out

    def load_encoder_weights(self, path: str | Path) -> None:
        """Load torchvision-format ResNet-50 weights (``fc.*`` and ``layer4.*`` are ignored)."""
        parts = ("conv1", "bn1", "layer1", "layer2", "layer3")
        state = read_checkpoint(path)
        if isinstance(state, dict):
            state = {k: v for k, v in state.items() if k.split(".")[0] in parts}
        encoder = nn.Module()
        for name in parts:
            encoder.add_module(name, getattr(self, name))
        load_state_checked(encoder, state, path)
