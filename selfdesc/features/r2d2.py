"""R2D2 (Revaud et al. 2019) with the multi-scale extraction of its ``extract.py`` (spec §3.6).

Starting at scale 1, the image is repeatedly down-sampled by ``scale_f = 2^(1/4)`` (bilinear,
each level from the previous one, as in R2D2); a level is processed when its scale lies in
``[min_scale, max_scale]`` and its longest side in ``[min_size, max_size]``. Per level,
keypoints are the pixels where the repeatability ``S`` is the maximum of its 3x3 window,
``S >= repeatability_thr`` and the reliability ``R >= reliability_thr``; the descriptor is
read at that pixel and the score is ``R * S``. The ``max_keypoints`` best over all levels
are kept (default 5000).

Variants (``variant``): ``"full"`` (default; min_scale 0.3, max_scale 1, min_size 0,
max_size 9999: R2D2's full-resolution HPatches setting) and ``"paper"`` (min_scale 0,
min_size 256, max_size 1024: the 256-1024 px setting of the paper). Setting any of the four
options explicitly overrides the variant.

Coordinates: a level pixel ``p`` maps to ``(p + 0.5) * W / w - 0.5`` in the input image
(pixel centres, per axis). R2D2's own code uses ``p * W / w``, which puts keypoints of a level
at scale ``s`` about ``0.5 / s - 0.5`` px (up to 1.2 px at 0.3) right of / below the
true position.
"""
from __future__ import annotations

from typing import Any, ClassVar, Iterator

import torch
import torch.nn.functional as F

from selfdesc.errors import ConfigError
from selfdesc.features.base import Extractor
from selfdesc.features.nms import dense_nms_mask
from selfdesc.models.l2net import QuadL2Net
from selfdesc.weights import weight_file

VARIANTS: dict[str, dict[str, float]] = {
    "full": {"min_scale": 0.3, "max_scale": 1.0, "min_size": 0, "max_size": 9999},
    "paper": {"min_scale": 0.0, "max_scale": 1.0, "min_size": 256, "max_size": 1024},
}


def pyramid_levels(
    height: int,
    width: int,
    scale_f: float,
    min_scale: float,
    max_scale: float,
    min_size: float,
    max_size: float,
) -> list[tuple[float, int, int, bool]]:
    """R2D2's scale schedule: ``(scale, h, w, used)`` per level, from scale 1 down.

    Levels with ``used=False`` are only computed to reach the next one (the down-sampling
    cascades). Scales and sizes are compared with R2D2's 0.001 tolerance.
    """
    longest = max(height, width)
    levels, s = [], 1.0
    h, w = height, width
    while s + 0.001 >= max(min_scale, min_size / longest):
        levels.append((s, h, w, s - 0.001 <= min(max_scale, max_size / longest)))
        s /= scale_f
        h, w = round(height * s), round(width * s)
    return levels


class R2D2(Extractor):
    """R2D2 features, 128-D; see the module docstring for the options."""

    name = "r2d2"
    needs_weights: ClassVar[bool] = True
    default_conf: ClassVar[dict[str, Any]] = {
        "weights_dir": None,
        "checkpoint": "r2d2/r2d2_WASF_N16.pt",
        "max_keypoints": 5000,
        "variant": "full",
        "scale_f": 2**0.25,
        "min_scale": None,
        "max_scale": None,
        "min_size": None,
        "max_size": None,
        "reliability_thr": 0.7,
        "repeatability_thr": 0.7,
    }

    def _init(self, conf: dict[str, Any]) -> None:
        self._resolve_variant(conf)
        self.net = QuadL2Net.from_r2d2_checkpoint(weight_file(conf["checkpoint"], conf["weights_dir"], self.name))
        self.net.eval()

    def _resolve_variant(self, conf: dict[str, Any]) -> None:
        """Fill the unset scale / size options from ``conf["variant"]``."""
        if conf["variant"] not in VARIANTS:
            raise ConfigError(f"feature '{self.name}': unknown variant '{conf['variant']}' (known: {', '.join(VARIANTS)})")
        for key, value in VARIANTS[conf["variant"]].items():
            if conf[key] is None:
                conf[key] = value

    def _levels(self, images: torch.Tensor) -> Iterator[torch.Tensor]:
        """The used pyramid levels of ``(B, C, H, W)`` images, from scale 1 down."""
        c = self.conf
        H, W = images.shape[-2:]
        levels = pyramid_levels(H, W, c["scale_f"], c["min_scale"], c["max_scale"], c["min_size"], c["max_size"])
        img = images.contiguous(memory_format=torch.channels_last)  # faster convolutions on CPU
        for _, h, w, used in levels:
            if (h, w) != tuple(img.shape[-2:]):
                img = F.interpolate(img, (h, w), mode="bilinear", align_corners=False)
            if used:
                yield img

    def _network(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        return [self.net({"image": img}) for img in self._levels(images)]

    def _extract_batch(self, images: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        c = self.conf
        H, W = images.shape[-2:]
        index, keypoints, scores, descriptors = [], [], [], []
        for img in self._levels(images):
            h, w = img.shape[-2:]
            out = self.net({"image": img})
            rel, rep = out["reliability"][:, 0], out["repeatability"][:, 0]
            peaks = dense_nms_mask(out["repeatability"], radius=1)[:, 0]
            peaks &= (rep >= c["repeatability_thr"]) & (rel >= c["reliability_thr"])
            b, y, x = torch.nonzero(peaks, as_tuple=True)  # image by image, raster order within each
            xy = torch.stack([x, y], dim=1).float()
            index.append(b)
            keypoints.append((xy + 0.5) * xy.new_tensor([W / w, H / h]) - 0.5)
            scores.append((rel[b, y, x] * rep[b, y, x]).float())
            descriptors.append(out["descriptors"][b, :, y, x].float())
        dim = int(self.net.conf["dim"])
        if not index:
            empty = {"keypoints": images.new_zeros((0, 2)), "scores": images.new_zeros(0), "descriptors": images.new_zeros((0, dim))}
            return [dict(empty) for _ in range(images.shape[0])]
        # per image: level by level, raster order within a level (a stable sort by image index)
        b = torch.cat(index)
        order = torch.sort(b, stable=True).indices
        counts = torch.bincount(b, minlength=images.shape[0]).tolist()
        parts = [torch.cat(v)[order].split(counts) for v in (keypoints, scores, descriptors)]
        return [{"keypoints": k, "scores": s, "descriptors": d} for k, s, d in zip(*parts)]


__all__ = ["R2D2", "VARIANTS", "pyramid_levels"]
