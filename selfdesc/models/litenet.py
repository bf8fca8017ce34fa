"""LiteNet: a light single-pass network for keypoints and descriptors (the ``lite`` HNDesc backbone).

Design (see ``docs/lite.md`` for where each idea comes from):

* The input is converted to grayscale and normalised per image (zero mean, unit variance), then
  zero-padded at the bottom / right to a multiple of 16 (outputs are cropped back).
* Encoder: strided 3x3 conv + BatchNorm + ReLU blocks down to 1/2, 1/4, 1/8 and 1/16 with
  ``channels`` features (thin at high resolution, wide at low resolution).
* Fusion at 1/8: the 1/8 features plus the up-sampled 1/16 features and the pooled 1/4 features,
  mixed by a 3x3 conv. Descriptors: at ``desc_stride`` 8 a 1x1 conv of the fused features; at 4
  the fused features are up-sampled and added to projected 1/4 features first. ``dim`` channels,
  **not** normalised: descriptors are sampled (bilinearly) and then L2-normalised, in training
  (:func:`~selfdesc.models.sampling.sample_descriptors`) as in extraction, where
  :meth:`LiteNet.describe_at` applies the (linear) 1x1 head to the sampled features only, which
  gives the same vectors without computing the dense ``dim``-channel map.
* Keypoint head, ``kp_head``:

  - ``dense`` (default): a translation-equivariant full-resolution score. A stride-1 branch on the
    normalised image (3x3 convs to 8 then ``local_dim`` channels: fine detail, every pixel
    treated alike) plus context from the encoder: the fused 1/8, the 1/4 and the 1/2 features,
    each projected to ``local_dim`` channels by a 1x1 conv and merged coarse to fine by bilinear
    2x up-sampling (a small FPN) up to full resolution. Their sum goes through two 3x3 convs
    (``local_dim`` channels, then one logit per pixel); ``heatmap = sigmoid(logit)``. Only the
    smooth, up-sampled context depends on the position of the image relative to the encoder's
    stride, so peaks follow sub-cell shifts of the image (``docs/lite.md`` has the measurements).
  - ``cell`` (the round-5 models): 65 logits per 8x8 cell (64 positions + a dustbin) from the
    pixel-unshuffled normalised image and the fused 1/8 features; softmax over the 65, dustbin
    dropped, pixel-shuffled to a full-resolution heatmap (SuperPoint's layout). Its peaks are
    locked to preferred positions inside the 8x8 cells. Model files written before this option
    existed have no ``kp_head`` key and are cell models
    (:func:`selfdesc.features.lite.backbone_conf`).

  ``antialias`` (default false) low-passes the input of every stride-2 convolution (and of the
  2x2 pooling in the fusion) with a 3x3 binomial filter (anti-aliased down-sampling); the weights
  are the same with or without it.
* Reliability head: ``sigmoid`` of a 1x1 conv of the fused 1/8 features.

``refine_radius`` / ``refine_temperature`` are not used by the network itself: they are the
sub-pixel soft-argmax window the model was trained with, stored with the weights so that
extraction refines keypoints exactly as training did.

Input ``{"image": (B, C, H, W)}`` in [0, 1], C = 1 or 3, any H, W. Output:
``descriptors`` ``(B, dim, ceil(H/s), ceil(W/s))`` (cell ``(i, j)`` centred on image pixel
``s*j + (s-1)/2``, see :func:`selfdesc.models.sampling.sample_descriptors`; with
``dense=False`` instead ``features`` ``(B, fuse_dim, ceil(H/s), ceil(W/s))`` for
:meth:`LiteNet.describe_at`), ``heatmap``
``(B, 1, H, W)`` (pixel ``(x, y)`` is image pixel centre ``(x, y)``), ``reliability``
``(B, 1, ceil(H/8), ceil(W/8))``.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from selfdesc.config import merge
from selfdesc.errors import ConfigError
from selfdesc.models.sampling import sample_descriptors

#: the encoder's total stride (inputs are padded to a multiple of it)
PAD_MULTIPLE = 16
#: cell size of the ``cell`` keypoint head and the stride of the reliability map
CELL = 8
#: keypoint heads of :class:`LiteNet` (``kp_head``)
KP_HEADS = ("dense", "cell")


def conv_bn(c_in: int, c_out: int, stride: int = 1, kernel: int = 3) -> nn.Sequential:
    """``kernel`` x ``kernel`` conv (no bias) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` in [0, 1] -> grayscale ``(B, 1, H, W)`` with zero mean and unit variance per image."""
    if image.shape[1] == 3:
        image = (image * image.new_tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    elif image.shape[1] != 1:
        raise ValueError(f"LiteNet: expected 1 or 3 channels, got {image.shape[1]}")
    return F.instance_norm(image, eps=1e-5)


def blur(x: torch.Tensor) -> torch.Tensor:
    """3x3 binomial low-pass ``[1, 2, 1]^T [1, 2, 1] / 16`` of ``(B, C, H, W)`` per channel
    (replicated borders), same size; separable shifted sums (faster on a CPU than a depthwise conv)."""
    p = F.pad(x, (1, 1, 1, 1), mode="replicate")
    h = p[..., :, :-2] + 2 * p[..., :, 1:-1] + p[..., :, 2:]
    return (h[..., :-2, :] + 2 * h[..., 1:-1, :] + h[..., 2:, :]) / 16


def upsample2(x: torch.Tensor) -> torch.Tensor:
    """Bilinear 2x up-sampling, pixel-centre aligned (``align_corners=False``)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class LiteNet(nn.Module):
    """Light encoder, fused descriptor map, full-resolution keypoint heatmap, reliability (module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {
        "dim": 128,
        "channels": (8, 24, 64, 128),
        "fuse_dim": 64,
        "desc_stride": 4,
        "refine_radius": 2,
        "refine_temperature": 0.1,
        "kp_head": "dense",
        "local_dim": 4,
        "antialias": False,
    }

    def __init__(self, conf: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__()
        merged = merge(self.default_conf, {**(conf or {}), **kwargs}, owner="LiteNet")
        merged["channels"] = tuple(int(c) for c in merged["channels"])
        self.conf = merged
        if len(merged["channels"]) != 4:
            raise ConfigError(f"LiteNet: channels must list 4 widths (1/2, 1/4, 1/8, 1/16), got {merged['channels']}")
        c1, c2, c3, c4 = merged["channels"]
        if merged["desc_stride"] not in (4, 8):
            raise ConfigError(f"LiteNet: desc_stride must be 4 or 8, got {merged['desc_stride']}")
        if merged["kp_head"] not in KP_HEADS:
            raise ConfigError(f"LiteNet: kp_head must be one of {', '.join(KP_HEADS)}, got '{merged['kp_head']}'")
        fd, dim = int(merged["fuse_dim"]), int(merged["dim"])
        self.stride = int(merged["desc_stride"])
        self.block1 = nn.Sequential(conv_bn(1, c1, 2), conv_bn(c1, c1))
        self.block2 = nn.Sequential(conv_bn(c1, c2, 2), conv_bn(c2, c2))
        self.block3 = nn.Sequential(conv_bn(c2, c3, 2), conv_bn(c3, c3), conv_bn(c3, c3))
        self.block4 = nn.Sequential(conv_bn(c3, c4, 2), conv_bn(c4, c4), conv_bn(c4, c4))
        self.lat2 = conv_bn(c2, fd, kernel=1)
        self.lat3 = conv_bn(c3, fd, kernel=1)
        self.lat4 = conv_bn(c4, fd, kernel=1)
        self.fuse = conv_bn(fd, fd)
        self.fine = conv_bn(c2, fd, kernel=1) if self.stride == 4 else None
        self.desc_head = nn.Conv2d(fd, dim, 1)
        self.antialias = bool(merged["antialias"])
        if merged["kp_head"] == "cell":
            self.pixel_branch = nn.Sequential(conv_bn(CELL * CELL, 64, kernel=1), conv_bn(64, 64, kernel=1), conv_bn(64, 64, kernel=1))
            self.kp_head = nn.Sequential(conv_bn(64 + fd, 64, kernel=1), nn.Conv2d(64, CELL * CELL + 1, 1))
        else:
            ld = int(merged["local_dim"])
            self.kp_local = nn.Sequential(conv_bn(1, 8), conv_bn(8, ld))
            self.kp_ctx8, self.kp_ctx4, self.kp_ctx2 = conv_bn(fd, ld, kernel=1), conv_bn(c2, ld, kernel=1), conv_bn(c1, ld, kernel=1)
            self.kp_score = nn.Sequential(conv_bn(ld, ld), nn.Conv2d(ld, 1, 3, padding=1))
        self.rel_head = nn.Conv2d(fd, 1, 1)

    @torch.no_grad()
    def fuse_batchnorm(self) -> LiteNet:
        """Fold every BatchNorm into its conv (inference only: puts the module in eval mode); returns self."""
        self.eval()
        for module in self.modules():
            if isinstance(module, nn.Sequential) and len(module) == 3 and isinstance(module[1], nn.BatchNorm2d):
                module[0] = fuse_conv_bn_eval(module[0], module[1])
                module[1] = nn.Identity()
        return self

    def describe_at(self, features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """L2-normalised ``(B, N, dim)`` descriptors at ``points`` ``(B, N, 2)`` (``(x, y)`` image pixels)
        from the ``features`` of ``forward(..., dense=False)``: equal to sampling the dense map."""
        sampled = sample_descriptors(features, points, normalize=False, stride=self.stride)  # (B, N, fuse_dim)
        weight = self.desc_head.weight.flatten(1)  # (dim, fuse_dim)
        return F.normalize(F.linear(sampled, weight, self.desc_head.bias), dim=-1)

    def _down(self, x: torch.Tensor) -> torch.Tensor:
        """The input of a stride-2 block: blurred with ``antialias``, else as is."""
        return blur(x) if self.antialias else x

    def _heatmap(self, x: torch.Tensor, f1: torch.Tensor, f2: torch.Tensor, fused: torch.Tensor) -> torch.Tensor:
        """Full-resolution ``(B, 1, H, W)`` heatmap in [0, 1] of the padded normalised image ``x``."""
        if self.conf["kp_head"] == "cell":
            logits = self.kp_head(torch.cat([self.pixel_branch(F.pixel_unshuffle(x, CELL)), fused], dim=1))
            return F.pixel_shuffle(torch.softmax(logits, dim=1)[:, :-1], CELL)
        context = upsample2(upsample2(upsample2(self.kp_ctx8(fused)) + self.kp_ctx4(f2)) + self.kp_ctx2(f1))
        return torch.sigmoid(self.kp_score(self.kp_local(x) + context))

    def forward(self, data: dict[str, torch.Tensor], dense: bool = True) -> dict[str, torch.Tensor]:
        x = normalize_image(data["image"])
        H, W = x.shape[-2:]  # sizes below use non-negative integer division only: it exports to ONNX exactly
        pad_h, pad_w = (PAD_MULTIPLE - H % PAD_MULTIPLE) % PAD_MULTIPLE, (PAD_MULTIPLE - W % PAD_MULTIPLE) % PAD_MULTIPLE
        if pad_h or pad_w or torch.jit.is_tracing():  # traced (ONNX export): the pad must be in the graph for every size
            x = F.pad(x, (0, pad_w, 0, pad_h))
        f1 = self.block1(self._down(x))
        f2 = self.block2(self._down(f1))
        f3 = self.block3(self._down(f2))
        f4 = self.block4(self._down(f3))
        size8 = f3.shape[-2:]
        fused = self.fuse(
            self.lat3(f3)
            + F.interpolate(self.lat4(f4), size=size8, mode="bilinear", align_corners=False)
            + F.avg_pool2d(self._down(self.lat2(f2)), 2)
        )
        if self.fine is not None:
            feats = self.fine(f2) + F.interpolate(fused, size=f2.shape[-2:], mode="bilinear", align_corners=False)
        else:
            feats = fused
        heatmap = self._heatmap(x, f1, f2, fused)
        s = self.stride
        out = {
            "heatmap": heatmap[..., :H, :W],
            "reliability": torch.sigmoid(self.rel_head(fused))[..., : (H + CELL - 1) // CELL, : (W + CELL - 1) // CELL],
        }
        if dense:
            out["descriptors"] = self.desc_head(feats)[..., : (H + s - 1) // s, : (W + s - 1) // s]
        else:
            out["features"] = feats[..., : (H + s - 1) // s, : (W + s - 1) // s]
        return out


__all__ = ["KP_HEADS", "LiteNet", "blur", "conv_bn", "normalize_image", "upsample2"]
