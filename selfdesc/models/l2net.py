"""R2D2's dilated L2-Net (``Quad_L2Net``), with optional repeatability / reliability heads.

The trunk is a fully convolutional L2-Net in which every stride is turned into a dilation,
so the output keeps the input resolution (spec §2.2.2, §3.1):

====  ======  =========  ========  =======  =========================
 #    kernel  out ch     dilation  BN       ReLU
====  ======  =========  ========  =======  =========================
 1-2  3x3     8 mchan    1         yes      yes
 3    3x3     16 mchan   1         yes      yes  (stride 2 -> dilation x2)
 4    3x3     16 mchan   2         yes      yes
 5    3x3     32 mchan   2         yes      yes  (stride 2)
 6    3x3     32 mchan   4         yes      yes
 7    2x2     32 mchan   4         yes      no   (stride 2; R2D2 ``relu22=False``)
 8    2x2     32 mchan   8         yes      no   (stride 2)
 9    2x2     dim        16        no       ``final_relu`` (HNDesc: yes, R2D2: no)
====  ======  =========  ========  =======  =========================

BatchNorm has no affine parameters. With ``heads`` (R2D2), two 1x1 convolutions read the
element-wise square of the raw trunk output: reliability = softmax over 2 channels (channel
1 kept), repeatability = ``softplus(u) / (1 + softplus(u))`` (kept as in R2D2 for weight
compatibility). Input: RGB in [0, 1], normalised inside with the ImageNet mean / std.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.errors import WeightsError
from selfdesc.weights import load_state_checked, read_checkpoint

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ConvBlock(nn.Module):
    """Conv (dilated, 'same' padding) -> optional BatchNorm(affine=False) -> optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, bn: bool, relu: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=((kernel - 1) * dilation) // 2, dilation=dilation)
        self.bn = nn.BatchNorm2d(cout, affine=False) if bn else None
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


def quad_l2net_plan(mchan: int, dim: int, final_relu: bool) -> list[dict[str, Any]]:
    """The 9 layers of the dilated Quad-L2-Net as ``out / kernel / dilation / bn / relu`` dicts."""
    # (out channels, kernel, stride of the original L2-Net, bn, relu)
    layers = [
        (8 * mchan, 3, 1, True, True),
        (8 * mchan, 3, 1, True, True),
        (16 * mchan, 3, 2, True, True),
        (16 * mchan, 3, 1, True, True),
        (32 * mchan, 3, 2, True, True),
        (32 * mchan, 3, 1, True, True),
        (32 * mchan, 2, 2, True, False),
        (32 * mchan, 2, 2, True, False),
        (dim, 2, 2, False, final_relu),
    ]
    plan, dilation = [], 1
    for out, kernel, stride, bn, relu in layers:
        # as in R2D2, a stride becomes a dilation of the *following* layers
        plan.append({"out": out, "kernel": kernel, "dilation": dilation, "bn": bn, "relu": relu})
        dilation *= stride
    return plan


class QuadL2Net(nn.Module):
    """Dense descriptor network of R2D2 / HNDesc-r2d2.

    Config (``default_conf``): ``dim`` 128, ``mchan`` 4 (N16; the "big" N8 checkpoint uses
    6), ``final_relu`` False (True for HNDesc), ``heads`` True (repeatability + reliability).

    ``forward({"image": (B, 3, H, W) RGB in [0, 1]})`` returns ``descriptors`` ``(B, dim, H, W)``
    (L2-normalised along channels) and, with heads, ``repeatability`` and ``reliability``
    ``(B, 1, H, W)`` in [0, 1]. Output pixel ``(x, y)`` is centred on input pixel ``(x, y)``.
    """

    default_conf: ClassVar[dict[str, Any]] = {"dim": 128, "mchan": 4, "final_relu": False, "heads": True}
    #: input pixels per descriptor-map cell (full resolution)
    stride: ClassVar[int] = 1

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        self.conf = merged = merge(self.default_conf, {**(conf or {}), **kwargs}, owner="QuadL2Net")
        self.plan = quad_l2net_plan(int(merged["mchan"]), int(merged["dim"]), bool(merged["final_relu"]))
        blocks, cin = [], 3
        for layer in self.plan:
            blocks.append(ConvBlock(cin, layer["out"], layer["kernel"], layer["dilation"], layer["bn"], layer["relu"]))
            cin = layer["out"]
        self.trunk = nn.Sequential(*blocks)
        self.reliability_head = nn.Conv2d(cin, 2, 1) if merged["heads"] else None
        self.repeatability_head = nn.Conv2d(cin, 1, 1) if merged["heads"] else None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Raw (un-normalised) trunk output ``(B, dim, H, W)`` of an RGB ``(B, 3, H, W)`` image in [0, 1]."""
        return self.trunk((image - self.mean) / self.std)

    def forward(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.features(data["image"])
        out = {"descriptors": F.normalize(x, p=2, dim=1)}
        if self.reliability_head is not None and self.repeatability_head is not None:
            x2 = x * x
            out["reliability"] = F.softmax(self.reliability_head(x2), dim=1)[:, 1:2]
            u = F.softplus(self.repeatability_head(x2))
            out["repeatability"] = u / (1 + u)
        return out

    @classmethod
    def from_r2d2_checkpoint(cls, path: str | Path, **conf: Any) -> QuadL2Net:
        """Build the network of a published R2D2 checkpoint (``Quad_L2Net_ConfCFS``) and load it strictly.

        ``mchan`` and ``dim`` are read from the weight shapes; ``conf`` may set the others.

        Raises:
            WeightsError: unreadable file, another architecture, or weights that do not fit.
        """
        path = Path(path)
        ckpt = read_checkpoint(path)
        if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
            raise WeightsError(f"{path}: expected an R2D2 checkpoint with a 'state_dict' entry")
        arch = str(ckpt.get("net", "Quad_L2Net_ConfCFS()"))
        if not arch.startswith("Quad_L2Net_ConfCFS("):
            raise WeightsError(f"{path}: architecture '{arch}' is not supported (only Quad_L2Net_ConfCFS)")
        state = {k.removeprefix("module."): v for k, v in ckpt["state_dict"].items()}
        try:
            conf = {"mchan": state["ops.0.weight"].shape[0] // 8, "dim": state["clf.weight"].shape[1], **conf}
        except KeyError as exc:
            raise WeightsError(f"{path}: not an R2D2 Quad_L2Net checkpoint (no {exc.args[0]})") from None
        net = cls(conf)
        load_state_checked(net, remap_r2d2_state_dict(state, net.plan), path)
        return net


def remap_r2d2_state_dict(state: dict[str, torch.Tensor], plan: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """Rename R2D2 keys (``[module.]ops.N.*``, ``clf.*``, ``sal.*``) to :class:`QuadL2Net` keys.

    R2D2 keeps conv, BatchNorm and ReLU modules in one flat list ``ops``; ``plan`` (from
    :func:`quad_l2net_plan`) tells which index is which. Unknown keys are kept as they are,
    so that strict loading reports them.
    """
    names: dict[str, str] = {"clf": "reliability_head", "sal": "repeatability_head"}
    index = 0
    for i, layer in enumerate(plan):
        names[f"ops.{index}"] = f"trunk.{i}.conv"
        index += 1
        if layer["bn"]:
            names[f"ops.{index}"] = f"trunk.{i}.bn"
            index += 1
        if layer["relu"]:
            index += 1
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        prefix, _, leaf = key.rpartition(".")
        out[f"{names.get(prefix, prefix)}.{leaf}"] = value
    return out


__all__ = ["QuadL2Net", "ConvBlock", "quad_l2net_plan", "remap_r2d2_state_dict", "IMAGENET_MEAN", "IMAGENET_STD"]
