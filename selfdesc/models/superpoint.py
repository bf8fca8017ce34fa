"""SuperPoint-style network written from the spec (methods.md §5.1), configurable.

VGG-style encoder (``depth`` stages of two 3x3 convs + ReLU, 2x2 max-pool between stages),
a descriptor head (3x3 conv 256 + ReLU, 1x1 conv to ``dim``, L2-normalised over channels)
and an optional 65-channel detector head. ``gray=True`` takes a 1-channel image (SuperPoint),
``gray=False`` RGB (the residual-descriptor paper's trimmed CNN). No pretrained weights are
shipped (MagicLeap's are not redistributable).

Input: ``(B, C, H, W)`` in [0, 1]. Output dict: ``descriptors`` ``(B, dim, H/s, W/s)`` with
``s = 2 ** (depth - 1)``; with the detector, ``scores`` ``(B, 1, H', W')`` = softmax over the
65 cells, dustbin dropped, depth-to-space to ``s`` x ``s`` cells (``H' = s * (H // s)``).
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge


class SuperPointNet(nn.Module):
    """Encoder + descriptor head (+ detector head). ``default_conf`` lists the options."""

    default_conf: ClassVar[dict[str, Any]] = {
        "channels": (64, 64, 128, 128),
        "dim": 256,
        "detector": True,
        "gray": True,
    }

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, owner="SuperPointNet")
        chans = list(self.conf["channels"])
        c_in = 1 if self.conf["gray"] else 3
        stages = []
        for i, c in enumerate(chans):
            stages.append(
                nn.Sequential(
                    nn.Conv2d(c_in, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True)
                )
            )
            c_in = c
        self.stages = nn.ModuleList(stages)
        self.stride = 2 ** (len(chans) - 1)
        self.desc_head = nn.Sequential(nn.Conv2d(c_in, 256, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(256, self.conf["dim"], 1))
        self.det_head = (
            nn.Sequential(nn.Conv2d(c_in, 256, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(256, self.stride**2 + 1, 1))
            if self.conf["detector"]
            else None
        )

    def encode(self, image: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W)`` -> encoder features ``(B, c, H/s, W/s)``."""
        if self.conf["gray"] and image.shape[1] == 3:
            image = (image * image.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        x = image
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            x = stage(x)
        return x

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.encode(data["image"])
        out = {"descriptors": F.normalize(self.desc_head(x), dim=1)}
        if self.det_head is not None:
            prob = torch.softmax(self.det_head(x), dim=1)[:, :-1]
            out["scores"] = F.pixel_shuffle(prob, self.stride)
        return out
