"""D2-Net's VGG16 backbone (conv1_1 .. conv4_3) and its detectors (spec §6.2a).

Dense-backbone interface (shared with :mod:`selfdesc.models.deform` and
:mod:`selfdesc.models.swin`): ``forward(image)`` takes ``(B, 3, H, W)`` RGB in ``[0, 1]``
(ImageNet-normalised inside, zero-padded at the bottom/right to a multiple of ``divisor``) and
returns ``{"features": (B, dim, h, w) raw dense descriptors, "scores": (B, 1, hs, ws) detection
scores >= 0}``. Map cell ``(i, j)`` of the features is centred on image pixel
``(stride * j + offset, stride * i + offset)`` (pixel-centre convention); likewise the scores
with ``score_stride`` / ``score_offset``.

``VGGBackbone``: the layers sit in ``features`` at torchvision's ``vgg16().features`` indices
(0 = conv1_1 ... 21 = conv4_3), as in D2-Net's ``DenseFeatureExtractionModule``. Training
model: three 2x2 max-pools, stride 8. ``dense=True`` is D2-Net's test model with the same
weights: pool3 becomes a stride-1 average pool and conv4_x are dilated by 2, so the map has
stride 4. Deviation: D2-Net's 2x2 stride-1 average pool shifts the map by half a cell; we use
a centred 3x3 one (``count_include_pad=False``) so the cell-centre convention stays exact.
Descriptors are the raw conv4_3 output (no final ReLU), in training and at test time.

Detectors: :func:`soft_detection` (D2-Net training score, used as the saliency of the loss and
the keypoint score) and :func:`hard_detection` (D2-Net test-time keypoints) with the Hessian
:func:`edge_mask` test.
"""
from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfdesc.config import merge
from selfdesc.models.l2net import IMAGENET_MEAN, IMAGENET_STD


#: conv layers of VGG16 up to conv4_3: (torchvision index, in, out), max-pools at 4, 9, 16
_VGG_CONVS = [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256), (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512)]


def normalize_image(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in ``[0, 1]`` -> ImageNet mean / std normalised."""
    mean = image.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = image.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (image - mean) / std


def pad_to_multiple(image: torch.Tensor, divisor: int) -> torch.Tensor:
    """Zero-pad ``(B, C, H, W)`` at the bottom / right so that ``H`` and ``W`` divide by ``divisor``."""
    H, W = image.shape[-2:]
    ph, pw = (-H) % divisor, (-W) % divisor
    return F.pad(image, (0, pw, 0, ph)) if ph or pw else image


def soft_detection(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """D2-Net soft detection score (not normalised to sum 1).

    With ``y = ReLU(features)``: local score ``alpha = exp(y / max(y)) / sum_3x3 exp(y / max(y))``
    (the window padded with ``exp = 1``; ``max`` over the whole image), channel score
    ``beta = y / max_c(y)``; score ``= max_c(alpha * beta)`` in ``[0, 1]``.

    Args:
        features: ``(B, C, h, w)`` dense feature map.

    Returns:
        ``(B, 1, h, w)`` scores.
    """
    y = F.relu(features)
    peak = y.flatten(1).amax(1).clamp_min(eps).view(-1, 1, 1, 1)
    e = torch.exp(y / peak)
    window = 9.0 * F.avg_pool2d(F.pad(e, (1, 1, 1, 1), value=1.0), 3, stride=1)
    alpha = e / window
    beta = y / y.amax(1, keepdim=True).clamp_min(eps)
    return (alpha * beta).amax(1, keepdim=True)


def edge_mask(maps: torch.Tensor, threshold: float, dilation: int = 1) -> torch.Tensor:
    """Hessian edge test: ``tr^2 / det <= (t + 1)^2 / t`` and ``det > 0`` per channel and pixel.

    Second derivatives are 3x3 finite differences with step ``dilation`` (zero padding), as in
    D2-Net (``t = 5``, step 1) and ASLFeat (``t = 10``, step 3, on the score map).

    Args:
        maps: ``(B, C, h, w)``.
        threshold: ``t``.
        dilation: finite-difference step, pixels.

    Returns:
        ``(B, C, h, w)`` bool, True where the point is not on an edge.
    """
    B, C, h, w = maps.shape
    x = maps.reshape(B * C, 1, h, w)
    k = maps.new_zeros(3, 1, 3, 3)
    k[0, 0, 1] = maps.new_tensor([1.0, -2.0, 1.0])  # d2/dx2
    k[1, 0, :, 1] = maps.new_tensor([1.0, -2.0, 1.0])  # d2/dy2
    k[2, 0] = 0.25 * maps.new_tensor([[1.0, 0.0, -1.0], [0.0, 0.0, 0.0], [-1.0, 0.0, 1.0]])  # d2/dxdy
    d = F.conv2d(x, k, padding=dilation, dilation=dilation)
    dxx, dyy, dxy = d[:, 0], d[:, 1], d[:, 2]
    det = dxx * dyy - dxy * dxy
    tr = dxx + dyy
    ok = (tr * tr <= det * (threshold + 1) ** 2 / threshold) & (det > 0)
    return ok.reshape(B, C, h, w)


def hard_detection(features: torch.Tensor, edge_threshold: float = 5.0) -> torch.Tensor:
    """D2-Net test-time detection: channel-wise max, 3x3 spatial max in that channel, not an edge.

    Args:
        features: ``(B, C, h, w)``.
        edge_threshold: ``t`` of :func:`edge_mask`.

    Returns:
        ``(B, 1, h, w)`` bool keypoint mask.
    """
    is_channel_max = features == features.amax(1, keepdim=True)
    is_local_max = features == F.max_pool2d(features, 3, stride=1, padding=1)
    detected = is_channel_max & is_local_max & edge_mask(features, edge_threshold)
    return detected.any(1, keepdim=True)


class VGGBackbone(nn.Module):
    """VGG16 up to conv4_3 with D2-Net soft detection (see the module docstring)."""

    default_conf: ClassVar[dict[str, Any]] = {"dense": False}

    dim = 512
    divisor = 8

    def __init__(self, conf: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.conf = merge(self.default_conf, conf or {}, owner="VGGBackbone")
        dense = bool(self.conf["dense"])
        layers: list[nn.Module] = []
        for index, cin, cout in _VGG_CONVS:
            while len(layers) < index:  # ReLU after each conv, pools at 4, 9, 16
                if len(layers) in (4, 9):
                    layers.append(nn.MaxPool2d(2, 2))
                elif len(layers) == 16:
                    layers.append(nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False) if dense else nn.MaxPool2d(2, 2))
                else:
                    layers.append(nn.ReLU(inplace=True))
            dil = 2 if dense and index >= 17 else 1
            layers.append(nn.Conv2d(cin, cout, 3, padding=dil, dilation=dil))
        self.features = nn.Sequential(*layers)
        self.stride = 4 if dense else 8
        self.offset = (self.stride - 1) / 2
        self.score_stride, self.score_offset = self.stride, self.offset

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.features(normalize_image(pad_to_multiple(image, self.divisor)))
        return {"features": x, "scores": soft_detection(x)}


__all__ = ["VGGBackbone", "edge_mask", "hard_detection", "normalize_image", "pad_to_multiple", "soft_detection"]
